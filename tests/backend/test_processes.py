"""Separate processes: intact data, and no segment outliving its owner however it ends."""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from platestream.backend import NapariStreamingBackend, Receiver
from platestream.backend.shm import HAS_MEMFD
from platestream.layering import ImageItem

from ..hygiene import our_segments
from ..waiting import wait_until
from .helpers import (
    Child,
    config,
    spawn_producer,
    spawn_receiver,
    terminate,
)
from .producer_script import crc

KINDS = ["named"] + (["memfd"] if HAS_MEMFD else [])
Make = Callable[..., NapariStreamingBackend]


def test_images_cross_processes_intact_and_in_order(children: list[Child]) -> None:
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    producer = spawn_producer(ready["data_port"], "--count", "5", "--images", "3", "--size", "96")
    children.append(producer)
    assert producer.expect("up")["up"]
    producer.expect("done")
    assert producer.wait(20) == 0
    lines = viewer.collect("image", 15)
    assert [(line["seq"], line["components"]["site"]) for line in lines] == [
        (seq, site) for seq in range(1, 6) for site in range(3)
    ]
    for line in lines:
        batch, index = line["seq"], line["components"]["site"]
        assert line["crc"] == crc(batch, index, 96)
    terminate(viewer)
    assert viewer.expect("stopped")["status"]["dropped"] == {}


def _end_producer(producer: Child, how: str) -> None:
    if how in ("normal", "exception"):
        producer.expect("done" if how == "normal" else "eof")
        assert producer.wait(20) == (0 if how == "normal" else 1)
        return
    producer.collect("sent", 3)  # mid-stream
    producer.signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    producer.wait(20)


@pytest.mark.parametrize("how", ["normal", "exception", "sigterm", "kill9"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_segment_outlives_its_producer(
    receiver: Receiver, children: list[Child], kind: str, how: str
) -> None:
    before = our_segments()
    count = "3" if how in ("normal", "exception") else "0"
    end = "exception" if how == "exception" else "normal"
    producer = spawn_producer(
        receiver.data_port,
        "--count",
        count,
        "--pool-kind",
        kind,
        "--end",
        end,
        "--delivery",
        "live",
        "--images",
        "8",
        "--size",
        "256",
    )
    children.append(producer)
    assert producer.expect("up")["pool"] is not None  # streaming through shared memory
    wait_until(lambda: receiver.stats().pools == 1, 10, "the pool mapped by the viewer")
    _end_producer(producer, how)
    wait_until(lambda: receiver.stats().pools == 0, 10, "the viewer releasing the pool")
    assert our_segments() == before
    # The receiver serves the next producer as if nothing happened.
    receiver.take()
    again = spawn_producer(receiver.data_port, "--count", "1", "--pool-kind", kind)
    children.append(again)
    again.expect("done")
    assert receiver.wait(10)


def test_a_killed_viewer_leaves_nothing_and_a_restarted_one_is_found(
    make_backend: Make, children: list[Child]
) -> None:
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    backend = make_backend(config(port, shm_pool_mb=8))
    assert backend.connect(timeout_s=20)
    link = backend.links()[("127.0.0.1", port)]
    frame = np.ones((512, 512), np.uint16)
    item = ImageItem({"site": 1}, 0, "s", frame.shape, "uint16")
    for _ in range(5):
        assert backend.save_batch([frame], [item]).sent == 1
    viewer.signal(signal.SIGKILL)
    viewer.wait(20)
    # The producer keeps running: live saves return at once and count what they drop.
    wait_until(lambda: not link.up, 10, "the link noticing the viewer is gone")
    started = time.monotonic()
    for _ in range(20):
        backend.save_batch([frame], [item])
    assert time.monotonic() - started < 1.0
    assert not our_segments()
    # A new viewer on the same port: the producer finds it and streams again.
    reborn, ready = spawn_receiver("--echo", port=port)
    children.append(reborn)
    wait_until(lambda: link.up and link.viewer_id == ready["viewer_id"], 20, "reconnection")
    lossless = config(port, delivery="lossless", lossless_budget_s=10.0)
    assert backend.save_batch([frame * 3], [item], config=lossless).sent == 1
    line = reborn.expect("image")
    assert line["crc"] == __import__("zlib").crc32((frame * 3).tobytes())
    terminate(reborn)


def _tiny_file_size_limit() -> None:
    # A "/dev/shm" too small, for real: the kernel refuses to grow any file past 1 MiB.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("kind", KINDS)
def test_no_room_for_the_pool_falls_back_to_inline_with_one_warning(
    children: list[Child], kind: str
) -> None:
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    producer = spawn_producer(
        ready["data_port"],
        "--count",
        "3",
        "--images",
        "2",
        "--size",
        "128",
        "--pool-mb",
        "16",
        "--pool-kind",
        kind,
        preexec_fn=_tiny_file_size_limit,
    )
    children.append(producer)
    assert producer.expect("up")["pool"] is None
    producer.expect("done")
    assert producer.wait(20) == 0
    for line in viewer.collect("image", 6):
        assert line["crc"] == crc(line["seq"], line["components"]["site"], 128)
    warnings = [line for line in producer.stderr if "inline frames instead" in line]
    assert len(warnings) == 1, producer.stderr
    assert not our_segments()
    terminate(viewer)


def test_a_shutdown_request_stops_only_the_viewer_it_names(children: list[Child]) -> None:
    from platestream.backend import request_once
    from platestream.schemas import Error, ErrorCode, Ok, Shutdown

    viewer, ready = spawn_receiver()
    children.append(viewer)
    wrong = request_once("127.0.0.1", ready["data_port"], Shutdown(viewer_id="someone-else"))
    assert isinstance(wrong.message, Error) and wrong.message.code is ErrorCode.WRONG_VIEWER
    right = request_once("127.0.0.1", ready["data_port"], Shutdown(viewer_id=ready["viewer_id"]))
    assert isinstance(right.message, Ok)
    viewer.expect("stopped")
    assert viewer.wait(20) == 0


def test_the_receiver_holds_no_descriptor_of_a_dead_producer(
    receiver: Receiver, children: list[Child]
) -> None:
    producer = spawn_producer(receiver.data_port, "--count", "0", "--delivery", "live")
    children.append(producer)
    pool = producer.expect("up")["pool"]
    wait_until(lambda: receiver.stats().batches >= 2, 10, "batches through the pool")
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    assert pool in maps
    producer.signal(signal.SIGKILL)
    producer.wait(20)
    wait_until(lambda: receiver.stats().pools == 0, 10, "release")
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    assert pool not in maps, "the viewer still maps a dead producer's pool"
    (report,) = receiver.stats().producers.values()
    assert report.pool == "" and report.batches >= 2
