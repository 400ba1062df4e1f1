"""``wait_shown``: the end of a run waits on a held request for its own share, not a poll."""

from __future__ import annotations

import time

import zmq

from platestream.backend import KeyStore, Receiver, ReceiverOptions
from platestream.schemas import (
    DisplayState,
    DropReason,
    Shown,
    WaitShown,
    decode_message,
    encode_message,
)


def _ask(receiver: Receiver, message: WaitShown) -> zmq.Socket[bytes]:
    context = zmq.Context.instance()
    req = context.socket(zmq.REQ)
    req.linger = 0
    KeyStore().local_client().apply(req)
    req.connect(f"tcp://127.0.0.1:{receiver.control_port}")
    req.send(encode_message(message))
    return req


def test_a_held_wait_is_answered_when_the_count_is_reached_and_not_before() -> None:
    shown = {"displayed": 0}
    with Receiver(ReceiverOptions(port=0)) as receiver:
        receiver.report_display(lambda: DisplayState(displayed=shown["displayed"]))
        receiver.start()
        req = _ask(receiver, WaitShown(count=5, wait_s=20))
        try:
            assert not req.poll(300)  # held: 0 of 5
            shown["displayed"] = 3
            receiver.display_changed()
            assert not req.poll(300)  # 3 of 5: still held
            receiver.count_dropped(DropReason.SUPERSEDED, 2, None)  # drops count too
            assert req.poll(5000)
            reply = decode_message(req.recv(), port="reply")
            assert isinstance(reply, Shown) and (reply.displayed, reply.dropped) == (3, 2)
            assert reply.accounted == 5
        finally:
            req.close(0)


def test_a_wait_whose_time_is_up_says_how_far_the_viewer_got() -> None:
    with Receiver(ReceiverOptions(port=0)) as receiver:
        receiver.report_display(lambda: DisplayState(displayed=1))
        receiver.start()
        started = time.monotonic()
        req = _ask(receiver, WaitShown(count=9, wait_s=0.5))
        try:
            assert req.poll(10000)
            reply = decode_message(req.recv(), port="reply")
            assert isinstance(reply, Shown) and reply.accounted == 1
            assert time.monotonic() - started >= 0.5
        finally:
            req.close(0)
