"""CURVE: anything reachable from another host is authenticated against an allow-list."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from platestream.backend import (
    CurveClient,
    CurveServer,
    InsecureBindError,
    KeyPair,
    KeyStore,
    NapariStreamingBackend,
    Receiver,
    ReceiverOptions,
)
from platestream.backend._security import is_local, is_loopback
from platestream.layering import ImageItem
from platestream.schemas import DropReason

from ..waiting import wait_until
from .helpers import config

Make = Callable[..., NapariStreamingBackend]
ITEM = ImageItem({"site": 1}, 0, "s", (8, 8), "uint8")


@pytest.fixture
def keys() -> dict[str, KeyPair]:
    return {name: KeyPair.generate() for name in ("viewer", "producer", "stranger")}


def curve_receiver(keys: dict[str, KeyPair]) -> Receiver:
    server = CurveServer(keys["viewer"], frozenset({keys["producer"].public}))
    return Receiver(ReceiverOptions(port=0, curve=server)).start()


def test_an_allowed_key_streams(keys: dict[str, KeyPair], make_backend: Make) -> None:
    with curve_receiver(keys) as receiver:
        client = CurveClient(keys["producer"], keys["viewer"].public)
        backend = make_backend(config(receiver.data_port, delivery="lossless"), curve=client)
        report = backend.save_batch([np.full((8, 8), 5, np.uint8)], [ITEM])
        assert report.sent == 1
        assert receiver.wait(5)
        assert receiver.take()[0].images[0].data[0, 0] == 5
        assert receiver.stats().auth_denied == 0


def test_a_wrong_key_is_refused_and_logged(
    keys: dict[str, KeyPair], make_backend: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with curve_receiver(keys) as receiver:
        stranger = CurveClient(keys["stranger"], keys["viewer"].public)
        backend = make_backend(config(receiver.data_port), curve=stranger)
        assert not backend.connect(timeout_s=1.0)
        wait_until(lambda: receiver.stats().auth_denied >= 1, 10, "a denied handshake")
        report = backend.save_batch([np.zeros((8, 8), np.uint8)], [ITEM])
        assert report.dropped == {DropReason.NO_VIEWER: 1}
        assert receiver.stats().images == 0
    refused = [r for r in caplog.records if "refused a producer" in r.getMessage()]
    assert refused and keys["stranger"].public.decode() in refused[0].getMessage()


def test_a_producer_without_keys_cannot_talk_to_a_curve_viewer(
    keys: dict[str, KeyPair], make_backend: Make
) -> None:
    with curve_receiver(keys) as receiver:
        backend = make_backend(config(receiver.data_port))
        assert not backend.connect(timeout_s=1.0)
        assert receiver.stats().images == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_listening_beyond_loopback_without_curve_is_refused(host: str) -> None:
    with pytest.raises(InsecureBindError):
        Receiver(ReceiverOptions(host=host, port=0))


def test_a_remote_viewer_without_keys_gets_nothing_in_clear_text(
    make_backend: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend(
        config(5555, napari_host="192.0.2.7"), keystore=KeyStore(tmp_path / "empty")
    )
    started = time.monotonic()
    report = backend.save_batch([np.zeros((8, 8), np.uint8)], [ITEM])
    assert time.monotonic() - started < 0.5
    assert report.dropped == {DropReason.NO_VIEWER: 1}
    assert not backend.links()
    assert "needs CURVE keys" in caplog.text


def test_the_key_store_gives_client_and_server_credentials(tmp_path: Path) -> None:
    here, there = KeyStore(tmp_path / "here"), KeyStore(tmp_path / "there")
    here.generate("producer")
    there.generate("viewer")
    assert here.client("scope-pc") is None
    there.allow(here.directory / "producer.key")
    here.trust("scope-pc", there.directory / "viewer.key")
    client = here.client("scope-pc")
    server = there.server()
    assert client is not None
    assert client.server_public == server.keys.public
    assert server.allowed == {client.keys.public}
    assert (there.directory / "viewer.key_secret").stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        here.generate("producer")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("localhost", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("scope-pc", False),
        ("::", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        assert is_local(host)
