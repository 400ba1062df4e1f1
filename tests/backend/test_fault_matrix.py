"""The fault matrix: kill -9, SIGTERM and SIGSTOP of the producer or the viewer mid-stream,
in live and lossless mode. After each: every image the producer handed over is shown,
dropped under a named reason (by the producer or a viewer), or counted viewer_lost; no
image shown is torn; no /dev/shm segment of this session is left; the viewer (a new one,
after a kill) serves."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from platestream.backend import request_once
from platestream.schemas import StatusReport, StatusRequest

from ..hygiene import our_segments
from ..waiting import wait_until
from .helpers import Child, spawn_producer, spawn_receiver
from .producer_script import crc

BATCHES, IMAGES, SIZE = 60, 4, 64
SIGNALS = {"kill -9": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGSTOP": signal.SIGSTOP}
STALL_S = 3.0  # a SIGSTOP lasts this long: twice the link's sync wait + rpc timeout


def status(port: int) -> StatusReport:
    reply = request_once("127.0.0.1", port, StatusRequest(), timeout_s=10)
    assert isinstance(reply.message, StatusReport)
    return reply.message


def images_of(child: Child) -> list[dict[str, Any]]:
    found = []
    while not child.lines.empty():
        line = child.lines.get_nowait()
        if line.get("event") == "image":
            found.append(line)
    return found


def stall(child: Child, signum: int) -> None:
    child.signal(signum)
    if signum == signal.SIGSTOP:
        threading.Event().wait(STALL_S)  # the fault's length, not a synchronisation
        child.signal(signal.SIGCONT)


def check_shown(lines: list[dict[str, Any]]) -> set[tuple[int, int]]:
    shown = set()
    for line in lines:
        batch, index = line["extra"]["batch"], line["extra"]["index"]
        assert line["crc"] == crc(batch, index, SIZE), f"image {batch}/{index} is torn"
        shown.add((batch, index))
    return shown


@pytest.mark.parametrize("mode", ["live", "lossless"])
@pytest.mark.parametrize("fault", list(SIGNALS))
def test_a_viewer_fault_mid_stream(children: list[Child], fault: str, mode: str) -> None:
    signum = SIGNALS[fault]
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    producer = spawn_producer(
        port,
        "--count",
        str(BATCHES),
        "--images",
        str(IMAGES),
        "--size",
        str(SIZE),
        "--delivery",
        mode,
        "--budget",
        "20",  # longer than the stall: a lossless producer waits it out
        "--pool-mb",
        "1",
    )
    children.append(producer)
    producer.expect("up")
    first = viewer.collect("image", 20, timeout_s=30)
    stall(viewer, signum)
    serving = viewer
    if signum != signal.SIGSTOP:
        viewer.wait(20)
        serving, _ = spawn_receiver("--echo", port=port)  # a new viewer takes the port
        children.append(serving)
    done = producer.expect("done", timeout_s=120)
    assert producer.wait(20) == 0
    final = status(port)
    viewer_drops = sum(final.dropped.values())
    torn = final.dropped.get("overwritten", 0)  # counted after receipt by the bare receiver
    lines = first + images_of(viewer) if serving is not viewer else first
    echoed = len(lines) - len(first) if serving is viewer else 0
    # Every image the serving viewer took in is echoed or counted torn: wait for the echoes.
    lines += serving.collect(
        "image",
        final.images - torn - echoed - (len(first) if serving is viewer else 0),
        timeout_s=30,
    )
    shown = check_shown(lines)
    handed = BATCHES * IMAGES
    dropped = dict(done["dropped"])
    # Counted among the sent: replaced by a newer image of their plane (live), or sent to a
    # viewer that was replaced before it confirmed them.
    superseded = dropped.pop("superseded", 0)
    lost = dropped.pop("viewer_lost", 0)
    assert done["sent"] + sum(dropped.values()) == handed, done
    unaccounted = done["sent"] - len(shown) - viewer_drops - superseded
    assert unaccounted <= lost, (unaccounted, lost, done, final.dropped)
    if signum == signal.SIGSTOP and mode == "lossless":
        assert lost == 0 and not dropped  # the same viewer again: nothing may be lost
    assert status(port).state.ready


@pytest.mark.parametrize("mode", ["live", "lossless"])
@pytest.mark.parametrize("fault", list(SIGNALS))
def test_a_producer_fault_mid_stream(children: list[Child], fault: str, mode: str) -> None:
    signum = SIGNALS[fault]
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    producer = spawn_producer(
        port,
        "--count",
        "0" if signum != signal.SIGSTOP else str(BATCHES),
        "--images",
        str(IMAGES),
        "--size",
        str(SIZE),
        "--delivery",
        mode,
        "--pool-kind",
        "named",
    )
    children.append(producer)
    producer.expect("up")
    check_shown(viewer.collect("image", 20, timeout_s=30))
    stall(producer, signum)
    if signum == signal.SIGSTOP:
        producer.expect("done", timeout_s=120)  # it goes on where it stopped
    producer.wait(20)
    # The viewer lets go of the producer's pool (pidfd) and serves on.
    wait_until(lambda: status(port).pools == 0, 20, "the viewer released the pool")
    check_shown(images_of(viewer))
    assert not our_segments(), "a producer's shared memory outlived it"
