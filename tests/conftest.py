"""Session-wide hygiene: a test session that leaves a /dev/shm segment of its own behind
(``hygiene``: tagged names) fails, and
the pipeline's fork server is stopped before the session ends instead of just after."""

from __future__ import annotations

import contextlib
import multiprocessing.forkserver
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from .hygiene import SHM, our_segments


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``$name`` is ``value`` (for this process and every process it starts), then as before."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Viewers write their run stores under the user's data directory: the session's own
    (inherited by every viewer a test starts), never the real one."""
    with _environment("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home"))):
        yield


@pytest.fixture(scope="session", autouse=True)
def private_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Viewers and producers find this user's CURVE keys on their own (made on first use):
    the session's own key store (inherited by every process a test starts), never the
    user's real one."""
    with _environment("PLATESTREAM_KEYS_DIR", str(tmp_path_factory.mktemp("keys"))):
        yield


@pytest.fixture(scope="session", autouse=True)
def no_leaked_shared_memory() -> object:
    before = our_segments()
    yield
    leaked = sorted(our_segments() - before)
    for name in leaked:  # clean up so one failing run does not poison the next
        with contextlib.suppress(FileNotFoundError):
            os.unlink(SHM / name)
    assert not leaked, f"test session leaked shared-memory segments: {leaked}"


@pytest.fixture(scope="session", autouse=True)
def fork_server_stopped() -> Iterator[None]:
    """The pipeline tests start a multiprocessing fork server; it would exit on its own once
    pytest's process is gone. Stop it now, so no process outlives the session even briefly.
    (``_forkserver`` and ``_stop`` are multiprocessing's own, private but stable since 3.8.)"""
    yield
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or pid is None or not hasattr(server, "_stop"):
        return
    stopper = threading.Thread(target=server._stop, daemon=True)  # closes its pipe, reaps it
    stopper.start()
    stopper.join(30)
    if stopper.is_alive():
        os.kill(pid, signal.SIGKILL)
        stopper.join(10)
        pytest.fail(f"the fork server (pid {pid}) did not stop when its pipe closed")
