"""The process manager's rules without napari: identities, records, ports, the queue."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest

from platestream.layering import ImageItem
from platestream.viewer.manager import _processes as procs
from platestream.viewer.manager._identity import MARKER
from platestream.viewer.manager._ports import Holder, inspect
from platestream.viewer.manager._records import (
    ViewerRecord,
    all_records,
    read_record,
    remove_record,
    write_record,
)
from platestream.viewer.manager._visualizer import (
    NapariStreamVisualizer,
    stop_viewer,
    viewer_command,
)

from .streaming import config

# A process that looks like a viewer on the command line, but only sleeps.
IMPOSTOR = "import sys, time; time.sleep(60)"


def impostor(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", IMPOSTOR, "-m", MARKER, "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )


def test_a_pid_is_a_viewer_only_with_its_marker_port_and_start_time() -> None:
    child = impostor(23456)
    try:
        started = procs.start_time(child.pid)
        assert started is not None and abs(started - time.time()) < 30
        reported = started + 3.0  # the viewer reports started_at after it came up
        assert procs.is_viewer(procs.ViewerProcess(child.pid, 23456, reported))
        assert not procs.is_viewer(procs.ViewerProcess(child.pid, 23457, reported))  # port
        # reported before the process existed: the pid was reused by a younger process
        assert not procs.is_viewer(procs.ViewerProcess(child.pid, 23456, started - 60))
        assert not procs.is_viewer(procs.ViewerProcess(os.getpid(), 23456, reported))
        assert not procs.kill_viewer(procs.ViewerProcess(child.pid, 23456, started - 60))
        assert child.poll() is None  # refused: nothing was signalled
        assert procs.terminate(procs.ViewerProcess(child.pid, 23456, reported), grace_s=5)
        assert child.wait(5) != 0
    finally:
        child.kill()
        child.wait(5)


def test_records_round_trip_and_only_the_owner_removes_one() -> None:
    record = ViewerRecord(port=23000, pid=1234, viewer_id="abc", started_at=1.0, title="t")
    write_record(record)
    assert read_record(23000) == record and all_records() == [record]
    remove_record(23000, viewer_id="someone else")
    assert read_record(23000) == record
    remove_record(23000, viewer_id="abc")
    assert read_record(23000) is None


def test_a_foreign_listener_is_foreign_and_never_stopped(ports: Callable[[int], int]) -> None:
    port = ports(1)
    assert inspect(port).holder is Holder.FREE
    with socket.socket() as foreign:
        foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        foreign.bind(("127.0.0.1", port + 1000))
        foreign.listen()
        # even a record naming a live process does not make it a viewer: the pid must prove it
        write_record(ViewerRecord(port, os.getpid(), "x", time.time(), "fake"))
        state = inspect(port)
        assert state.holder is Holder.FOREIGN
        assert not stop_viewer("127.0.0.1", port, timeout_s=1)
        assert foreign.fileno() >= 0
    remove_record(port)


def test_images_before_the_viewer_is_ready_wait_in_a_bounded_queue() -> None:
    visualizer = NapariStreamVisualizer(config(5555), queue_limit=5)
    item = ImageItem({"well": "A01"}, 0, "raw", (2, 2), "uint8")
    array = np.ones((2, 2), np.uint8)
    assert visualizer.save_batch([array] * 2, [item] * 2) is None
    array[:] = 7  # the queue holds copies: the caller may reuse its buffers
    assert visualizer.save_batch([array] * 2, [item] * 2) is None
    assert visualizer.queued == 4
    assert visualizer.save_batch([array] * 3, [item] * 3) is None  # 7 > 5: the oldest go
    assert visualizer.queued == 5 and visualizer.dropped_before_ready == 2
    with pytest.raises(ValueError, match="arrays but"):
        visualizer.save_batch([array], [])


def test_the_viewer_command_carries_the_marker() -> None:
    command = viewer_command(5600, "t", exit_with=42)
    assert command[1:3] == ["-m", MARKER] and command[command.index("--port") + 1] == "5600"
    assert command[-2:] == ["--exit-with", "42"]
    with pytest.raises(ValueError):
        NapariStreamVisualizer(config(5555), on_conflict="kill")
