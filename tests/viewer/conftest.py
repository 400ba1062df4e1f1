"""Fixtures for viewer tests: private records, free ports, and no viewer left behind."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from platestream.viewer.manager._identity import MARKER
from platestream.viewer.manager._ports import bindable
from platestream.viewer.manager._processes import wait_exit
from platestream.viewer.manager._visualizer import stop_viewer

GUI = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: xvfb-run")


def viewer_pids(port: int) -> list[int]:
    """Every viewer process on ``port`` (by its command line), whoever started it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if MARKER.encode() in argv and str(port).encode() in argv:
                found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def private_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Viewer records (and logs) of this test in its own directory; children inherit it."""
    directory = tmp_path / "runtime"
    monkeypatch.setenv("PLATESTREAM_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    return directory


@pytest.fixture
def ports() -> Iterator[Callable[[int], int]]:
    """``ports(n)``: a data port whose n consecutive pairs are free; all are cleaned after."""
    used: list[int] = []

    def take(pairs: int = 1) -> int:
        for _ in range(200):
            first = random.randrange(21000, 29000)
            candidates = [p for i in range(pairs) for p in (first + i, first + i + 1000)]
            if all(bindable(p) for p in candidates):
                used.extend(range(first, first + pairs))
                return first
        raise RuntimeError("no free ports")

    yield take
    leftovers = []
    for port in used:
        stop_viewer("127.0.0.1", port, timeout_s=5.0)
        for pid in viewer_pids(port):  # should be none: kill, and fail the test
            leftovers.append(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 5.0)
    assert not leftovers, f"viewer processes left running: {leftovers}"
