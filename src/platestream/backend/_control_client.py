"""The producer's (and tools') side of the control port: one REQ socket that never gets stuck.

A REQ socket whose reply never comes cannot send again. So every request has a deadline,
and a request that misses it closes the socket and opens a fresh one: the next request
starts clean whatever happened to the last one (viewer killed, restarted, hung).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import zmq

from platestream.schemas import Message, decode_message, encode_message

from ._security import CurveClient, credentials_for

MAX_REPLY_BYTES = 64 << 20  # a snapshot PNG fits; a hostile reply cannot exhaust memory


class ControlTimeout(TimeoutError):
    """No reply within the deadline; the socket has been recreated."""


@dataclass(frozen=True)
class Reply:
    message: Message
    frames: tuple[bytes, ...] = field(default=())


def control_endpoint(host: str, port: int) -> str:
    """tcp://host:control_port for a viewer whose data port is ``port``."""
    return f"tcp://{_bracket(host)}:{port + 1000}"


def data_endpoint(host: str, port: int) -> str:
    return f"tcp://{_bracket(host)}:{port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ControlClient:
    """REQ client for one viewer's control port. Use from one thread at a time."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        *,
        curve: CurveClient | None = None,
        timeout_s: float = 1.0,
    ) -> None:
        self.context = context
        self.endpoint = endpoint
        self.curve = curve
        self.timeout_s = timeout_s
        self.socket = self._open()
        self.outstanding = False

    def _open(self) -> zmq.Socket[bytes]:
        sock = self.context.socket(zmq.REQ)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
        if self.endpoint.startswith("tcp://"):
            sock.setsockopt(zmq.IPV6, 1)
        if self.curve is not None:
            self.curve.apply(sock)
        sock.connect(self.endpoint)
        return sock

    def reset(self) -> None:
        """Close the (possibly stuck) socket and open a fresh one."""
        self.socket.close(linger=0)
        self.socket = self._open()
        self.outstanding = False

    def send(self, message: Message) -> bool:
        """Send a request without waiting; False (and a fresh socket) if it cannot go now."""
        if self.outstanding:
            self.reset()
        try:
            self.socket.send(encode_message(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.reset()
            return False
        self.outstanding = True
        return True

    def receive(self) -> Reply:
        """The reply, once the socket is readable; raises WireError for a bad one."""
        frames = self.socket.recv_multipart()
        self.outstanding = False
        return Reply(decode_message(frames[0], port="reply"), tuple(frames[1:]))

    def request(self, message: Message, timeout_s: float | None = None) -> Reply:
        """Send and wait for the reply; ControlTimeout (socket recreated) if none comes."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        if not self.send(message):
            raise ControlTimeout(f"{self.endpoint}: cannot send {message.TYPE!r}")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.reset()
                raise ControlTimeout(f"{self.endpoint}: no reply to {message.TYPE!r} in {timeout}s")
            if self.socket.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                return self.receive()

    def close(self) -> None:
        self.socket.close(linger=0)


def request_once(
    host: str,
    port: int,
    message: Message,
    *,
    timeout_s: float = 2.0,
    curve: CurveClient | None = None,
) -> Reply:
    """One request to the viewer at host:port (data port) with a private context, with
    this user's credentials for that host unless ``curve`` is given."""
    if curve is None:
        curve = credentials_for(host)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        client = ControlClient(context, control_endpoint(host, port), curve=curve)
        try:
            return client.request(message, timeout_s)
        finally:
            client.close()
    finally:
        context.term()
