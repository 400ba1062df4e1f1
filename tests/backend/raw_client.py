"""A hand-driven client of a Receiver (raw ZeroMQ sockets, this user's credentials) and the
fixtures that start one: the tests of bad input and of local security share them."""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np
import zmq

from platestream.backend import Receiver
from platestream.config import DeliveryMode, default_display
from platestream.schemas import (
    Batch,
    DropReason,
    InlinePixels,
    Ping,
    Pong,
    Probe,
    StatusRequest,
    WireDtype,
    WireItem,
    decode_message,
    display_to_wire,
    encode_message,
)

from ..credentials import credentialed

TIMEOUT_MS = 5000


class RawClient:
    """A hand-driven producer: a PUB and a REQ socket, no platestream producer code."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.pub = self.context.socket(zmq.PUB)
        self.pub.linger = 0
        credentialed(self.pub)
        self.pub.connect(f"tcp://127.0.0.1:{receiver.data_port}")
        self.req = self.new_req()
        self.seq = 0

    def new_req(self) -> zmq.Socket[bytes]:
        req = self.context.socket(zmq.REQ)
        req.linger = 0
        req.rcvtimeo = TIMEOUT_MS
        credentialed(req)
        req.connect(f"tcp://127.0.0.1:{self.receiver.control_port}")
        return req

    def request(self, message: Any) -> Any:
        self.req.send(encode_message(message))
        return decode_message(self.req.recv(), port="reply")

    def barrier(self) -> None:
        """Return once the receiver processed everything published before (one pipe: FIFO)."""
        token = secrets.token_hex(4)
        self.req.send(encode_message(Ping(producer="raw", token=token, wait_s=5.0)))
        poller = zmq.Poller()
        poller.register(self.req, zmq.POLLIN)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.pub.send(encode_message(Probe(producer="raw", token=token)))
            if poller.poll(20):
                pong = decode_message(self.req.recv(), port="reply")
                assert isinstance(pong, Pong) and pong.probe_seen
                return
        raise AssertionError("the receiver never saw the probe")

    def send(self, frames: list[bytes]) -> None:
        self.pub.send_multipart(frames)
        self.barrier()

    def batch(self, items: tuple[WireItem, ...], **fields: Any) -> bytes:
        self.seq += 1
        values: dict[str, Any] = {
            "producer": "raw",
            "seq": self.seq,
            "saved_at": time.time(),
            "sent_at": time.time(),
            "delivery": DeliveryMode.LOSSLESS,
            "display": display_to_wire(default_display()),
            "items": items,
        }
        return encode_message(Batch(**{**values, **fields}))

    def close(self) -> None:
        self.pub.close(0)
        self.req.close(0)
        self.context.term()


def inline_item(nbytes: int = 32, frame: int = 1) -> WireItem:
    return WireItem(
        components={"site": 1},
        step_index=0,
        step_name="s",
        shape=(nbytes // 2,),
        dtype=WireDtype.UINT16,
        pixels=InlinePixels(frame=frame, nbytes=nbytes),
    )


def dropped(receiver: Receiver, reason: DropReason) -> int:
    return int(receiver.stats().dropped.get(reason.value, 0))


def assert_still_serving(client: RawClient) -> None:
    client.receiver.take()  # whatever earlier (valid) messages queued
    pixels = np.arange(16, dtype=np.uint16)
    client.send([client.batch((inline_item(),)), pixels.tobytes()])
    assert client.receiver.wait(5)
    (batch,) = client.receiver.take()
    np.testing.assert_array_equal(batch.images[0].data, pixels)
    assert isinstance(client.request(StatusRequest()), type(client.receiver.stats()))
