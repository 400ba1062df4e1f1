"""Fixtures: an in-process receiver, backends that are always closed, no stray processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from platestream.backend import NapariStreamingBackend, Receiver, ReceiverOptions

from .helpers import Child
from .raw_client import RawClient


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(ReceiverOptions(port=0)) as running:
        running.start()
        yield running


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**options: Any) -> Receiver:
        made.append(Receiver(ReceiverOptions(**{"port": 0, **options})).start())
        return made[-1]

    yield make
    for running in made:
        running.close()


@pytest.fixture
def make_backend() -> Iterator[Callable[..., NapariStreamingBackend]]:
    made: list[NapariStreamingBackend] = []

    def make(*args: Any, **kwargs: Any) -> NapariStreamingBackend:
        made.append(NapariStreamingBackend(*args, **kwargs))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Subprocesses a test starts; all are killed and reaped afterwards."""
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


@pytest.fixture(autouse=True)
def no_stray_processes() -> Iterator[None]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    stray = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    alive = [p for p in stray if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in alive:
        process.kill()
    assert not alive, f"test left processes running: {alive}"


@pytest.fixture
def small_receiver() -> Iterator[Receiver]:
    with Receiver(ReceiverOptions(port=0, max_message_bytes=1 << 20)) as running:
        running.start()
        yield running


@pytest.fixture
def client(small_receiver: Receiver) -> Iterator[RawClient]:
    raw = RawClient(small_receiver)
    raw.barrier()
    yield raw
    raw.close()
