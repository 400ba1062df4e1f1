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

from ..hygiene import our_segments
from ..waiting import wait_until
from .helpers import (
    Child,
    echoed,
    spawn_producer,
    spawn_receiver,
    until_stopped,
    viewer_status,
)
from .producer_script import crc

BATCHES, IMAGES, SIZE = 60, 4, 64
SIGNALS = {"kill -9": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGSTOP": signal.SIGSTOP}
STALL_S = 3.0  # a SIGSTOP lasts this long: twice the link's sync wait + rpc timeout


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


def start(children: list[Child], *producer_args: str) -> tuple[Child, int, Child]:
    """A bare receiver echoing what it shows, and a producer streaming to it."""
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    common = ("--images", str(IMAGES), "--size", str(SIZE))
    producer = spawn_producer(port, *common, *producer_args)
    children.append(producer)
    producer.expect("up")
    return viewer, port, producer


@pytest.mark.parametrize("mode", ["live", "lossless"])
@pytest.mark.parametrize("fault", list(SIGNALS))
def test_a_viewer_fault_mid_stream(children: list[Child], fault: str, mode: str) -> None:
    signum = SIGNALS[fault]
    # The lossless budget outlasts the stall: a lossless producer waits it out.
    viewer, port, producer = start(
        children, "--count", str(BATCHES), "--delivery", mode, "--budget", "20", "--pool-mb", "1"
    )
    first = viewer.collect("image", 20, timeout_s=30)
    stall(viewer, signum)
    serving, lines, counters = viewer, list(first), []
    if signum != signal.SIGSTOP:
        shown_before, last_words = until_stopped(viewer)  # dead already, or says its counts
        lines += shown_before
        counters += [last_words] if last_words else []
        serving, _ = spawn_receiver("--echo", port=port)  # a new viewer takes the port
        children.append(serving)
    done = producer.expect("done", timeout_s=120)
    assert producer.wait(20) == 0
    assert viewer_status(port).state.ready  # the serving viewer answers
    shown_after, last_words = until_stopped(serving)
    lines += shown_after
    counters.append(last_words)
    shown = check_shown(lines)
    assert len(shown) == len(lines)  # no image shown twice
    # The viewers' own drops; a gap in the batch numbers is counted per batch (IMAGES each).
    viewer_drops = 0
    for status in counters:
        dropped_here = dict(status["dropped"])
        viewer_drops += dropped_here.pop("lost", 0) * IMAGES + sum(dropped_here.values())
    if signum != signal.SIGSTOP and not counters[:-1]:  # killed: it said each drop as it went
        for said in (line for line in viewer.history if line.get("event") == "dropped"):
            viewer_drops += said["images"] * (IMAGES if said["reason"] == "lost" else 1)
    handed = BATCHES * IMAGES
    dropped = dict(done["dropped"])
    # Counted among the sent: replaced by a newer image of their plane (live), or sent to a
    # viewer that was replaced before it confirmed them.
    superseded = dropped.pop("superseded", 0)
    lost = dropped.pop("viewer_lost", 0)
    assert done["sent"] + sum(dropped.values()) == handed, done
    unaccounted = done["sent"] - len(shown) - viewer_drops - superseded
    assert unaccounted <= lost, (unaccounted, lost, done, counters)
    if signum == signal.SIGSTOP and mode == "lossless":
        assert lost == 0 and not dropped  # the same viewer again: nothing may be lost
        assert unaccounted == 0


@pytest.mark.parametrize("mode", ["live", "lossless"])
@pytest.mark.parametrize("fault", list(SIGNALS))
def test_a_producer_fault_mid_stream(children: list[Child], fault: str, mode: str) -> None:
    signum = SIGNALS[fault]
    count = "0" if signum != signal.SIGSTOP else str(BATCHES)  # 0: until killed
    viewer, port, producer = start(
        children, "--count", count, "--delivery", mode, "--pool-kind", "named"
    )
    check_shown(viewer.collect("image", 20, timeout_s=30))
    stall(producer, signum)
    if signum == signal.SIGSTOP:
        producer.expect("done", timeout_s=120)  # it goes on where it stopped
    producer.wait(20)
    # The viewer lets go of the producer's pool (pidfd) and serves on.
    wait_until(lambda: viewer_status(port).pools == 0, 20, "the viewer released the pool")
    check_shown(echoed(viewer))
    assert not our_segments(), "a producer's shared memory outlived it"
