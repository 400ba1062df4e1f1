"""The receiver as a viewer wraps it: wake-ups, taking batches, control hooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from platestream.backend import (
    DEFER,
    ControlRequest,
    NapariStreamingBackend,
    Receiver,
    request_once,
)
from platestream.layering import ImageItem
from platestream.schemas import (
    Clear,
    Ok,
    Ping,
    Pong,
    Snapshot,
    SnapshotReply,
    StatusReport,
    StatusRequest,
)

from .helpers import config

Make = Callable[..., NapariStreamingBackend]


def wait_for_images(receiver: Receiver, count: int, timeout_s: float = 10.0) -> list[Any]:
    """The next ``count`` images the receiver queues (fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    images: list[Any] = []
    while len(images) < count:
        left = deadline - time.monotonic()
        assert left > 0 and receiver.wait(left), f"{len(images)} of {count} images arrived"
        for batch in receiver.take():
            images.extend(batch.images)
    return images


def send_one(backend: NapariStreamingBackend, value: int = 1) -> None:
    item = ImageItem({"channel": "DAPI"}, 1, "blur", (4, 4), "uint8")
    assert backend.save(np.full((4, 4), value, np.uint8), item).sent == 1


def test_arrivals_wake_a_callback(make_backend: Make, receiver: Receiver) -> None:
    woken = threading.Event()
    receiver.on_arrival(woken.set)
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    send_one(backend)
    assert woken.wait(5)
    assert receiver.wait(5)
    (batch,) = receiver.take()
    assert batch.images[0].item.step_name == "blur" and batch.producer
    assert batch.received_at >= batch.sent_at - 5 and batch.live is False
    assert not receiver.wait(0)  # drained by take()


def test_a_snapshot_handler_may_answer_later_from_another_thread(receiver: Receiver) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)

    def snapshot(request: ControlRequest) -> object:
        # The GUI thread renders, then answers.
        answer = threading.Timer(0.05, request.reply, (SnapshotReply(nbytes=len(png)), (png,)))
        answer.start()
        return DEFER

    receiver.handle("snapshot", snapshot)
    reply = request_once("127.0.0.1", receiver.data_port, Snapshot())
    assert isinstance(reply.message, SnapshotReply) and reply.frames == (png,)


def test_clear_empties_the_queue_then_calls_the_viewer(
    make_backend: Make, receiver: Receiver
) -> None:
    cleared = []
    receiver.handle("clear", lambda request: cleared.append(request.message) or Ok())
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    send_one(backend)
    assert receiver.wait(5)
    assert isinstance(request_once("127.0.0.1", receiver.data_port, Clear()).message, Ok)
    assert cleared == [Clear()] and receiver.take() == []
    assert receiver.stats().dropped == {"cleared": 1}  # not shown, and not uncounted


def test_protocol_requests_cannot_be_taken_over(receiver: Receiver) -> None:
    with pytest.raises(ValueError):
        receiver.handle("ping", lambda request: Ok())


def test_ready_and_status_are_reported(receiver: Receiver) -> None:
    receiver.set_ready(False)
    pong = request_once("127.0.0.1", receiver.data_port, Ping()).message
    assert isinstance(pong, Pong) and not pong.state.ready and not pong.probe_seen
    assert pong.viewer_id == receiver.viewer_id and pong.control_port == receiver.control_port
    status = request_once("127.0.0.1", receiver.data_port, StatusRequest()).message
    assert isinstance(status, StatusReport) and status.viewer_id == receiver.viewer_id


def test_taking_within_a_byte_budget_leaves_the_rest_queued_in_order(
    make_backend: Make, receiver: Receiver
) -> None:
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    for value in range(1, 6):  # five batches of one 16-byte image
        send_one(backend, value)
    (link,) = backend.links().values()
    assert link.flush(10)
    assert len(receiver.queue) == 5

    def values(batches: list[object]) -> list[int]:
        return [int(b.images[0].data[0, 0]) for b in batches]  # type: ignore[attr-defined]

    assert values(receiver.take(max_bytes=40)) == [1, 2]  # 32 bytes fit, 48 would not
    assert values(receiver.take(max_bytes=0)) == [3]  # at least one, so nothing stalls
    assert values(receiver.take()) == [4, 5]


def test_a_viewers_filter_reaches_the_producer_which_sends_nothing_else(
    make_backend: Make, make_receiver: Callable[..., Receiver]
) -> None:
    """The viewer announces ``show`` in the handshake: the producer leaves the rest out
    before copying anything and counts it ``filtered``; what a producer sends anyway (one
    that ignores the handshake) the viewer leaves out and counts the same way."""
    receiver = make_receiver(show={"well": ("A01",), "channel": ("DAPI",)})
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    arrays, items = [], []
    for well in ("A01", "A02"):
        for channel in ("DAPI", "GFP"):
            arrays.append(np.full((8, 8), 7, np.uint16))
            items.append(ImageItem({"well": well, "channel": channel}, 0, "raw", (8, 8), "uint16"))
    report = backend.save_batch(arrays, items)
    assert report.sent == 1 and report.filtered == 3 and not report.dropped
    (link,) = backend.links().values()
    assert link.show == {"well": ("A01",), "channel": ("DAPI",)}
    taken = wait_for_images(receiver, 1)
    assert [image.item.lookup["well"] for image in taken] == ["A01"]
    link.show = {}  # a producer that ignores the filter: the viewer keeps to it
    report = backend.save_batch(arrays, items)
    assert report.sent == 4 and report.filtered == 0
    assert [i.item.lookup["channel"] for i in wait_for_images(receiver, 1)] == ["DAPI"]
    assert receiver.state().filtered == 3 and receiver.state().dropped == 0
    backend.close()  # every batch confirmed, filtered images or not
    assert backend.totals.filtered == 3 and not backend.totals.dropped


def test_a_configs_show_streams_part_of_a_step(make_backend: Make, receiver: Receiver) -> None:
    backend = make_backend(
        config(receiver.data_port, delivery="lossless", show={"site": [2], "step": ["blur"]})
    )
    arrays = [np.full((8, 8), site, np.uint16) for site in (1, 2, 3)]
    items = [ImageItem({"well": "A01", "site": s}, 1, "blur", (8, 8), "uint16") for s in (1, 2, 3)]
    report = backend.save_batch(arrays, items)
    assert report.sent == 1 and report.filtered == 2
    assert [int(image.data[0, 0]) for image in wait_for_images(receiver, 1)] == [2]
    other = [ImageItem({"well": "A01", "site": 2}, 2, "threshold", (8, 8), "uint16")]
    assert backend.save_batch(arrays[:1], other).filtered == 1  # another step: not shown
    assert backend.totals.filtered == 3
