"""Bad input on both ports: counted, dropped, and the receiver keeps serving."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platestream.backend import Receiver, ReceiverOptions
from platestream.config import default_display
from platestream.schemas import (
    DropReason,
    Error,
    ErrorCode,
    Ok,
    Ping,
    Probe,
    ShmPixels,
    StatusRequest,
    Sync,
    Synced,
    WireDtype,
    WireItem,
    decode_message,
    display_to_wire,
    encode_message,
)

from ..credentials import credentialed
from .raw_client import (
    TIMEOUT_MS,
    RawClient,
    assert_still_serving,
    dropped,
    inline_item,
)


def _valid_header(client: RawClient) -> bytes:
    return client.batch((inline_item(),))


BAD_DATA = {
    "random bytes": (lambda c: [b"\x93\x00garbage\xff"], DropReason.BAD_FRAME),
    "random frames": (lambda c: [b"{", b"\x00" * 100, b"x"], DropReason.BAD_FRAME),
    "json list": (lambda c: [b"[]"], DropReason.BAD_FRAME),
    "wrong schema": (
        lambda c: [b'{"type": "batch", "v": 1, "producer": 5}'],
        DropReason.BAD_SCHEMA,
    ),
    "wrong version": (
        lambda c: [_valid_header(c).replace(b'"v":1', b'"v":99')],
        DropReason.BAD_VERSION,
    ),
    "truncated": (lambda c: [_valid_header(c)], DropReason.TRUNCATED),
    "short frame": (lambda c: [_valid_header(c), b"\x00" * 31], DropReason.TRUNCATED),
    "extra frame": (lambda c: [_valid_header(c), b"\x00" * 32, b"\x00"], DropReason.TRUNCATED),
    "shape mismatch": (
        lambda c: [c.batch((dataclasses.replace(inline_item(), shape=(3,)),)), b"\x00" * 32],
        DropReason.TRUNCATED,
    ),
    "oversized": (lambda c: [_valid_header(c), b"\x00" * (1 << 20)], DropReason.OVERSIZED),
    "control message on data port": (lambda c: [encode_message(Ping())], DropReason.UNEXPECTED),
    "bad display config": (
        lambda c: [
            c.batch(
                (inline_item(),), display={**display_to_wire(default_display()), "napari_port": 80}
            ),
            b"\x00" * 32,
        ],
        DropReason.BAD_SCHEMA,
    ),
    "lone surrogate in a step name": (
        lambda c: [
            _valid_header(c).replace(b'"step_name":"s"', b'"step_name":"\\ud800"'),
            b"\0" * 32,
        ],
        DropReason.BAD_FRAME,
    ),
    "lone surrogate in a producer id": (
        # counted per producer, it would be in every status reply, which could not be encoded
        lambda c: [
            _valid_header(c).replace(b'"producer":"raw"', b'"producer":"\\udfff"'),
            b"\0" * 32,
        ],
        DropReason.BAD_FRAME,
    ),
    "probe with frames": (
        lambda c: [encode_message(Probe(producer="x", token="t")), b"x"],
        DropReason.TRUNCATED,
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_counted_dropped_and_survived(client: RawClient, case: str) -> None:
    frames, reason = BAD_DATA[case]
    client.send(frames(client))
    assert dropped(client.receiver, reason) == 1
    assert not client.receiver.take()
    assert_still_serving(client)


def test_a_slot_in_no_attached_pool_drops_the_image_and_still_acknowledges(
    client: RawClient,
) -> None:
    ghost = WireItem(
        components={},
        step_index=0,
        step_name="s",
        shape=(4,),
        dtype=WireDtype.UINT8,
        pixels=ShmPixels(pool="psm_nothere", slot=3, offset=8192, nbytes=4, generation=2),
    )
    client.send([client.batch((ghost, inline_item(frame=1))), b"\x01" * 32])
    assert dropped(client.receiver, DropReason.UNKNOWN_SLOT) == 1
    (batch,) = client.receiver.take()  # the other image of the batch still arrives
    assert len(batch.images) == 1
    reply = client.request(Sync(producer="raw", after=0, wait_s=0))
    assert isinstance(reply, Synced) and reply.done_seq == client.seq


def test_a_frame_over_the_hard_limit_disconnects_only_its_sender(client: RawClient) -> None:
    client.pub.send_multipart([_valid_header(client), b"\x00" * (3 << 20)])
    # libzmq drops that connection; the PUB reconnects and the receiver carries on.
    assert_still_serving(client)


def test_sequence_gaps_are_counted_as_lost(client: RawClient) -> None:
    client.send([client.batch((inline_item(),)), b"\x00" * 32])
    client.seq += 3
    client.send([client.batch((inline_item(),)), b"\x00" * 32])
    assert dropped(client.receiver, DropReason.LOST) == 3
    assert client.receiver.stats().producers["raw"].dropped == {"lost": 3}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\xff\xfe not json", ErrorCode.BAD_REQUEST),
        (b'{"type": "ping", "v": 7}', ErrorCode.BAD_VERSION),
        (b'{"type": "launch_missiles", "v": 1}', ErrorCode.BAD_REQUEST),
        (encode_message(Ok()), ErrorCode.BAD_REQUEST),
        (b"x" * (2 << 20), ErrorCode.BAD_REQUEST),
    ],
    ids=["garbage", "version", "unknown type", "a reply as request", "oversized"],
)
def test_bad_control_requests_get_an_error_reply(
    client: RawClient, body: bytes, code: ErrorCode
) -> None:
    client.req.send(body)
    reply = decode_message(client.req.recv(), port="reply")
    assert isinstance(reply, Error) and reply.code is code
    assert client.receiver.stats().state.dropped >= 1
    assert_still_serving(client)


def test_an_unhandled_request_type_is_refused_politely(client: RawClient) -> None:
    from platestream.schemas import Snapshot

    reply = client.request(Snapshot())
    assert isinstance(reply, Error) and reply.code is ErrorCode.UNSUPPORTED


def test_frames_without_a_request_envelope_are_dropped(client: RawClient) -> None:
    dealer = client.context.socket(zmq.DEALER)
    dealer.linger = 0
    credentialed(dealer)
    dealer.connect(f"tcp://127.0.0.1:{client.receiver.control_port}")
    try:
        dealer.send(b'{"type": "status", "v": 1}')  # no empty delimiter frame
        # Then a well-formed request on the same connection, answered in order.
        dealer.send_multipart([b"", encode_message(StatusRequest())])
        assert dealer.poll(TIMEOUT_MS)
        frames = dealer.recv_multipart()
        assert decode_message(frames[-1], port="reply").TYPE == "status_report"
        assert dropped(client.receiver, DropReason.BAD_FRAME) == 1
    finally:
        dealer.close(0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_fuzzed_multipart_messages_never_hurt_the_receiver(
    client: RawClient, frames: list[bytes]
) -> None:
    before = client.receiver.stats()
    client.send(frames)
    after = client.receiver.stats()
    assert after.state.dropped + after.batches >= before.state.dropped + before.batches


def test_fuzzed_json_headers_are_dropped_not_crashed(client: RawClient) -> None:
    good = json.loads(_valid_header(client))
    rng = np.random.default_rng(7)
    junk: list[Any] = [None, -1, 1.5, "x" * 10, [], {}, True, 2**70]
    for _ in range(100):
        body = json.loads(json.dumps(good))
        key = rng.choice(sorted(body))
        body[key] = junk[rng.integers(len(junk))]
        client.pub.send_multipart([json.dumps(body).encode(), b"\x00" * 32])
    client.barrier()
    assert_still_serving(client)


def test_a_taken_port_fails_cleanly(receiver: Receiver) -> None:
    import psutil

    before = psutil.Process().num_fds()
    with pytest.raises(zmq.ZMQError):
        Receiver(ReceiverOptions(port=receiver.data_port))
    assert psutil.Process().num_fds() == before


def test_a_failing_loop_turn_is_counted_and_serving_goes_on(
    small_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One event that breaks the loop costs that event; the thread lives on."""
    real = small_receiver.serve_once
    failures = iter([True])

    def once_broken(timeout_s: float) -> int:
        if next(failures, False):
            raise RuntimeError("a bug in handling one event")
        return real(timeout_s)

    monkeypatch.setattr(small_receiver, "serve_once", once_broken)
    small_receiver._wake()  # the running loop turns, fails once, and goes on
    client = RawClient(small_receiver)
    try:
        client.barrier()  # answered: the thread serves
        assert dropped(small_receiver, DropReason.INTERNAL) == 1
        assert not small_receiver.died
    finally:
        client.close()


def test_a_receive_thread_that_fails_for_good_says_so() -> None:
    died = threading.Event()
    with Receiver(ReceiverOptions(port=0)) as receiver:
        receiver.on_died(died.set)

        def broken(timeout_s: float) -> int:
            raise RuntimeError("broken for good")

        receiver.serve_once = broken  # type: ignore[method-assign]
        receiver.start()
        assert died.wait(10)  # the viewer is told, so it exits instead of living on deaf
        assert receiver.died
