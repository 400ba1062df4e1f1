"""The viewer's control port: a ROUTER socket that routes validated requests to handlers.

ROUTER rather than REP (REQ clients cannot tell the difference): a reply can be given
later, from any thread - the handshake's pong waits for the probe, a sync waits for the
next finished batch, a snapshot waits for the GUI thread - while other clients are served.
A handler returns a reply, or ``DEFER`` and calls ``request.reply(...)`` when it is ready.
Malformed requests are counted and answered with an ``error`` so no client is left stuck.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import zmq

from platestream.schemas import (
    DropReason,
    Error,
    ErrorCode,
    Message,
    WireError,
    decode_message,
    encode_message,
)

from ._counters import ReceiverCounters

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES: Final = 1 << 20


class Deferred:
    """Returned by a handler that will call ``request.reply`` later."""


DEFER: Final = Deferred()


@dataclass(frozen=True)
class ControlReply:
    """A reply message and the raw frames that follow it (a snapshot's PNG)."""

    message: Message
    frames: tuple[bytes, ...] = field(default=())


class ControlRequest:
    """One validated request; ``reply`` may be called once, from any thread."""

    def __init__(
        self, message: Message, envelope: list[bytes], peer: str, outbox: Callable[..., None]
    ) -> None:
        self.message = message
        self.peer = peer  # the client's IP address ("" if unknown)
        self.received_at = time.monotonic()
        self._envelope = envelope
        self._outbox = outbox
        self._replied = threading.Event()
        self.on_reply: Callable[[ControlRequest], None] | None = None

    @property
    def client(self) -> bytes:
        """The connection it came on (the ROUTER's routing id)."""
        return self._envelope[0]

    @property
    def replied(self) -> bool:
        return self._replied.is_set()

    def reply(self, message: Message, frames: tuple[bytes, ...] = ()) -> None:
        if self._replied.is_set():
            return
        self._replied.set()
        if self.on_reply is not None:
            self.on_reply(self)
        self._outbox(self._envelope, ControlReply(message, tuple(frames)))


class HeldRequests:
    """Requests answered later (a ping waiting for its probe, a sync for its batch),
    bounded per connection and overall. When a bound is reached the oldest held request
    (of that connection, or of all) is answered at once with what its deadline would have
    given it, so one client flooding the port cannot keep others from being held.
    Used from the receive thread only."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self.evicted = 0
        self._all: OrderedDict[ControlRequest, Callable[[], None]] = OrderedDict()
        self._by_client: dict[bytes, OrderedDict[ControlRequest, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def hold(self, request: ControlRequest, answer_now: Callable[[], None]) -> None:
        """Hold ``request``; ``answer_now`` replies to it early (and forgets it)."""
        mine = self._by_client.setdefault(request.client, OrderedDict())
        if len(mine) >= self.per_client:
            self._evict(next(iter(mine)))
        if len(self._all) >= self.total:
            self._evict(next(iter(self._all)))
        self._all[request] = answer_now
        self._by_client.setdefault(request.client, OrderedDict())[request] = None
        request.on_reply = self._forget

    def _forget(self, request: ControlRequest) -> None:
        if self._all.pop(request, None) is None:
            return
        mine = self._by_client[request.client]
        del mine[request]
        if not mine:
            del self._by_client[request.client]

    def _evict(self, request: ControlRequest) -> None:
        answer = self._all[request]
        self.evicted += 1
        answer()  # replies, which forgets it
        self._forget(request)  # in case the answer found nothing to reply to


Handler = Callable[[ControlRequest], Message | ControlReply | Deferred]


class ControlRouter:
    """Owns the ROUTER socket; used only from the receive thread, except ``reply``."""

    def __init__(
        self, sock: zmq.Socket[bytes], counters: ReceiverCounters, wake: Callable[[], None]
    ) -> None:
        self.socket = sock
        self.counters = counters
        self._wake = wake
        self._handlers: dict[str, Handler] = {}
        self._outbox: queue.SimpleQueue[tuple[list[bytes], ControlReply]] = queue.SimpleQueue()

    def register(self, message_type: str, handler: Handler) -> None:
        self._handlers[message_type] = handler

    def handler(self, message_type: str) -> Handler | None:
        return self._handlers.get(message_type)

    def _post(self, envelope: list[bytes], reply: ControlReply) -> None:
        self._outbox.put((envelope, reply))
        self._wake()

    def drain(self, limit: int = 256) -> int:
        """Handle the requests waiting on the socket (at most ``limit``)."""
        handled = 0
        while handled < limit:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            handled += 1
            self._on_frames(frames)
        return handled

    def _on_frames(self, frames: list[zmq.Frame]) -> None:
        delimiter = next((i for i, f in enumerate(frames) if len(f) == 0), None)
        if delimiter is None or delimiter == 0:
            self.counters.drop(DropReason.BAD_FRAME)  # no REQ envelope: nobody to answer
            return
        envelope = [f.bytes for f in frames[: delimiter + 1]]
        body = frames[delimiter + 1 :]
        try:
            message = self._decode(body)
        except WireError as err:
            self.counters.drop(err.reason)
            code = (
                ErrorCode.BAD_VERSION
                if err.reason is DropReason.BAD_VERSION
                else ErrorCode.BAD_REQUEST
            )
            self._send(envelope, ControlReply(Error(code=code, message=str(err)[:4000])))
            return
        peer = _peer_address(frames[-1])
        request = ControlRequest(message, envelope, peer, self._post)
        self._dispatch(request, envelope)

    def _decode(self, body: list[zmq.Frame]) -> Message:
        if len(body) != 1:
            raise WireError(DropReason.TRUNCATED, f"a request is one frame; got {len(body)}")
        if len(body[0]) > MAX_REQUEST_BYTES:
            raise WireError(DropReason.OVERSIZED, f"request of {len(body[0])} bytes")
        return decode_message(body[0].bytes, port="request")

    def _dispatch(self, request: ControlRequest, envelope: list[bytes]) -> None:
        handler = self._handlers.get(request.message.TYPE)
        if handler is None:
            result: Message | ControlReply | Deferred = Error(
                code=ErrorCode.UNSUPPORTED,
                message=f"this viewer does not handle {request.message.TYPE!r}",
            )
        else:
            try:
                result = handler(request)
            except Exception as err:  # a broken handler must not take the viewer down
                log.exception("control handler for %r failed", request.message.TYPE)
                result = Error(code=ErrorCode.INTERNAL, message=f"{type(err).__name__}: {err}")
        if isinstance(result, Deferred):
            return
        reply = result if isinstance(result, ControlReply) else ControlReply(result)
        request.reply(reply.message, reply.frames)

    def flush_outbox(self) -> None:
        """Send the replies handlers gave (from any thread) since the last call."""
        while True:
            try:
                envelope, reply = self._outbox.get_nowait()
            except queue.Empty:
                return
            self._send(envelope, reply)

    def _send(self, envelope: list[bytes], reply: ControlReply) -> None:
        try:
            self.socket.send_multipart(
                [*envelope, encode_message(reply.message), *reply.frames], zmq.NOBLOCK
            )
        except zmq.ZMQError as err:  # the client is gone, or its pipe is full: drop it
            log.debug("control reply not sent: %s", err)


def _peer_address(frame: zmq.Frame) -> str:
    try:
        return str(frame.get("Peer-Address"))
    except zmq.ZMQError:
        return ""
