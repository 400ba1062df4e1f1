"""One producer's connection to one viewer: a PUB socket for data, and a supervisor thread.

The supervisor owns the control REQ socket. It performs the handshake - a ping the viewer
answers only once the ping's token has arrived through this link's data path, so nothing
is sent before the subscription is live, and nothing sleeps - then attaches the shared-
memory pool, then keeps one ``sync`` long-poll outstanding: the viewer answers it whenever
it finished more of our batches (that is the acknowledgement channel) or after
``sync_wait_s`` (that is the heartbeat). A missing answer, a new viewer id or a dropped TCP
connection puts the link down; it reconnects with backoff, forever, until closed.

The caller's thread never does control I/O: it reads the link state, writes pixels and
publishes (see ``delivery``). Shared state is guarded by ``cond``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

import zmq

from platestream.schemas import Message, Ping, Pong, PoolKind, Probe, Sync, Synced, encode_message

from .control_client import ControlClient, control_endpoint, data_endpoint
from .pool_attach import PoolAttacher
from .recycle import BufferRecycler
from .security import CurveClient

log = logging.getLogger(__name__)

MONITORED = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH


def _monitor_event(frames: list[bytes]) -> int:
    """The event id of a ZeroMQ socket-monitor message (frame 0: uint16 event, uint32
    value; frame 1: the endpoint). Parsed here: ``zmq.utils.monitor`` imports asyncio,
    which would cost every pipeline worker its import time."""
    if len(frames) != 2 or len(frames[0]) != 6:
        return 0
    event: int = struct.unpack("=Hi", frames[0])[0]
    return event


class LinkState(str, Enum):
    DOWN = "down"
    UP = "up"
    CLOSED = "closed"


@dataclass(frozen=True)
class LinkOptions:
    """Timing and bounds of a link; the defaults suit loopback and LAN viewers."""

    handshake_timeout_s: float = 2.0
    rpc_timeout_s: float = 1.0
    sync_wait_s: float = 0.5
    retry_min_s: float = 0.05
    retry_max_s: float = 2.0
    live_wait_s: float = 0.003  # the most a live save_batch waits for a free slot
    close_timeout_s: float = 2.0  # how long close() lets the viewer finish what was sent
    max_in_flight: int = 1024  # unacknowledged batches; below both sides' HWM, so no loss
    send_hwm: int = 4096
    pool_kind: PoolKind | None = None  # None: memfd on Linux, else named
    pool_slots: int = 1024


class Link:
    """A producer's link to the viewer at host:port (data port)."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        host: str,
        port: int,
        *,
        shm: bool,
        pool_bytes: int,
        curve: CurveClient | None = None,
        options: LinkOptions | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.options = options or LinkOptions()
        self.producer_id = f"p{os.getpid()}-{secrets.token_hex(4)}"
        self.pool_bytes = pool_bytes
        self.cond = threading.Condition()
        self.send_lock = threading.RLock()  # one delivery at a time: seq order = send order
        self.state = LinkState.DOWN
        self.viewer_id = ""
        self.session = 0  # bumped on every successful handshake
        self.session_base = 0  # batches up to here belong to earlier sessions
        self.acked_seq = 0
        self.next_seq = 1
        self.viewer_dropped: dict[str, int] = {}
        # Inline batches not yet acknowledged, (seq, bytes); owned by the delivering thread.
        self.inline_in_flight: deque[tuple[int, int]] = deque()
        self.inline_session = 0
        self.recycler = BufferRecycler(pool_bytes)  # inline copies, at most a window's worth
        self._closing = False
        self._pub_lock = threading.Lock()
        self._pub = self._open_pub(context, curve)
        self._monitor = self._pub.get_monitor_socket(MONITORED)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._control = ControlClient(
            context, control_endpoint(host, port), curve=curve, timeout_s=self.options.rpc_timeout_s
        )
        self.attacher = PoolAttacher(self, shm, pool_bytes, self.options)
        self._auth_warned = False
        self._probe_now = False
        self._thread = threading.Thread(
            target=self._supervise, name=f"platestream-link-{host}:{port}", daemon=True
        )
        self._thread.start()

    def _open_pub(
        self, context: zmq.Context[zmq.Socket[bytes]], curve: CurveClient | None
    ) -> zmq.Socket[bytes]:
        pub = context.socket(zmq.PUB)
        pub.linger = 0
        pub.sndhwm = self.options.send_hwm
        pub.setsockopt(zmq.IPV6, 1)
        if curve is not None:
            curve.apply(pub)
        pub.connect(data_endpoint(self.host, self.port))
        return pub

    # ------------------------------------------------------------ caller side

    @property
    def up(self) -> bool:
        return self.state is LinkState.UP

    def wait_up(self, deadline: float) -> bool:
        """Wait (monotonic ``deadline``) for a completed handshake."""
        with self.cond:
            return (
                self.cond.wait_for(
                    lambda: self.state is not LinkState.DOWN, max(0.0, deadline - time.monotonic())
                )
                and self.state is LinkState.UP
            )

    def wait_for_acks(self, acked: int, session: int, deadline: float) -> bool:
        """Wait until acks advance past ``acked`` or the session changes; False on timeout."""
        with self.cond:
            return self.cond.wait_for(
                lambda: self.acked_seq != acked or self.session != session or not self.up,
                max(0.0, deadline - time.monotonic()),
            )

    def reserve_seq(self) -> int:
        with self.cond:
            seq = self.next_seq
            self.next_seq += 1
            return seq

    def publish(self, frames: list[Any]) -> None:
        """Send one multipart message; the buffers are not copied (``copy=False``)."""
        with self._pub_lock:
            self._pub.send_multipart(frames, copy=False)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the viewer finished every batch sent, or the link is down."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            return self.cond.wait_for(
                lambda: not self.up or self.acked_seq >= self.next_seq - 1,
                max(0.0, deadline - time.monotonic()),
            )

    def close(self) -> bool:
        """Let the viewer finish (bounded), say goodbye, close sockets and the pool.

        False if the supervisor thread did not end in time (its sockets may be open).
        """
        if self.up:
            self.flush(self.options.close_timeout_s)
        with self.cond:
            if self.state is LinkState.CLOSED:
                return True
            self._closing = True
            self.cond.notify_all()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(self.options.rpc_timeout_s + 2.0)
        with self.cond:
            self.state = LinkState.CLOSED
            self.cond.notify_all()
        with self._pub_lock:
            self._pub.close(linger=0)
        with self.send_lock:
            self.attacher.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        return not self._thread.is_alive()

    # -------------------------------------------------------- supervisor side

    def _supervise(self) -> None:
        backoff = self.options.retry_min_s
        try:
            while not self._closing:
                if self.up:
                    self._sync_round()
                    continue
                if self._handshake():
                    backoff = self.options.retry_min_s
                    continue
                self._wait_events(time.monotonic() + backoff)
                backoff = min(backoff * 2, self.options.retry_max_s)
        except Exception:  # a dead supervisor would strand the link silently
            log.exception("platestream link to %s:%s failed", self.host, self.port)
        finally:
            self._goodbye()
            self._go_down("closed")
            self._control.close()
            self._pub.disable_monitor()
            self._monitor.close(linger=0)

    def _poll(self, deadline: float, control: bool) -> tuple[bool, bool]:
        """Wait for (control reply, wake) until ``deadline``; handles monitor events."""
        poller = zmq.Poller()
        poller.register(self._monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if control:
            poller.register(self._control.socket, zmq.POLLIN)
        timeout_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
        ready = dict(poller.poll(timeout_ms))
        if self._monitor in ready:
            self._drain_monitor()
        return self._control.socket in ready, self._wake_r in ready or self._closing

    def _wait_events(self, deadline: float) -> None:
        while time.monotonic() < deadline and not self._closing:
            self._poll(deadline, control=False)

    def _drain_monitor(self) -> None:
        while self._monitor.poll(0):
            event = _monitor_event(self._monitor.recv_multipart())
            if event == zmq.EVENT_DISCONNECTED and self.up:
                self._go_down("the data connection dropped")
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._probe_now = True  # the subscription is about to arrive: probe
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH and not self._auth_warned:
                self._auth_warned = True
                log.warning("viewer %s:%s refused this producer's CURVE key", self.host, self.port)

    def _publish_probe(self, token: str) -> None:
        self.publish([encode_message(Probe(producer=self.producer_id, token=token))])

    def _handshake(self) -> bool:
        """Ping with a token that must come back through the data path; then attach."""
        token = secrets.token_hex(8)
        wait_s = self.options.handshake_timeout_s
        ping = Ping(producer=self.producer_id, token=token, wait_s=wait_s)
        if not self._control.send(ping):
            return False
        deadline = time.monotonic() + wait_s + self.options.rpc_timeout_s
        interval, next_probe = 0.001, 0.0
        self._probe_now = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                self._control.reset()
                return False
            if now >= next_probe or self._probe_now:
                # Repeated, with growing gaps, until the viewer has seen one: no slow joiner.
                self._publish_probe(token)
                next_probe, interval = now + interval, min(interval * 2, 0.05)
                self._probe_now = False
            replied, woken = self._poll(min(deadline, next_probe), control=True)
            if woken:
                return False
            if replied:
                break
        reply = self._receive()
        if not isinstance(reply, Pong) or not reply.probe_seen:
            return False
        if not self.attacher.attach(self._control, reply.viewer_id):
            return False
        self._go_up(reply)
        return True

    def _receive(self) -> Message | None:
        try:
            return self._control.receive().message
        except ValueError as err:  # WireError: a bad reply is as good as none
            log.warning("bad reply from viewer %s:%s: %s", self.host, self.port, err)
            self._control.reset()
            return None

    def _go_up(self, pong: Pong) -> None:
        with self.cond:
            self.state = LinkState.UP
            self.viewer_id = pong.viewer_id
            self.session += 1
            self.session_base = self.acked_seq = self.next_seq - 1
            self.cond.notify_all()
        log.info("streaming to viewer %s at %s:%s", pong.viewer_id, self.host, self.port)

    def _go_down(self, why: str) -> None:
        with self.cond:
            if self.state is LinkState.UP:
                log.info("viewer %s:%s lost: %s", self.host, self.port, why)
                self.state = LinkState.DOWN
            self.cond.notify_all()

    def _sync_round(self) -> None:
        with self.cond:
            after = self.acked_seq
        wait_s = self.options.sync_wait_s
        if not self._control.send(Sync(producer=self.producer_id, after=after, wait_s=wait_s)):
            self._go_down("cannot send to the control port")
            return
        deadline = time.monotonic() + wait_s + self.options.rpc_timeout_s
        while self.up:
            replied, woken = self._poll(deadline, control=True)
            if replied:
                self._on_sync_reply(self._receive())
                return
            if woken:
                return
            if time.monotonic() >= deadline:
                self._control.reset()
                self._go_down("no answer on the control port")
                return
        self._control.reset()  # went down (connection dropped) while the sync was out

    def _on_sync_reply(self, reply: Message | None) -> None:
        if not isinstance(reply, Synced) or reply.viewer_id != self.viewer_id:
            self._go_down("the viewer restarted or refused the sync")
            return
        with self.cond:
            self.acked_seq = max(self.acked_seq, reply.done_seq)
            self.viewer_dropped = dict(reply.dropped)
            self.cond.notify_all()

    def _goodbye(self) -> None:
        if self.up:
            self.attacher.detach(self._control, self.producer_id)
