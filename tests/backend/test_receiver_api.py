"""The receiver as a viewer wraps it: wake-ups, taking batches, control hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable

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
