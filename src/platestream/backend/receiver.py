"""The Qt-free receiver: what a viewer process runs to get images off the wire.

It binds the data port (SUB) and the control port (ROUTER, data port + 1000), as the
persistent side does; validates every message; copies pixels out of producers' pools the
moment a batch arrives (so producers can reuse their slots) - or, with ``zero_copy``,
lends read-only views of the slots until the display releases them (see ``lease``) - and
queues the batches for the display. One thread - ``start()``, or your own calling
``serve_forever()`` - owns the sockets and reacts to arrivals (no timer polling).

The display side is woken on arrival three ways, pick one: ``on_arrival(callback)`` (called
in the receive thread; emit a Qt signal from it), ``arrival_fd()`` (readable while batches
are queued; for a QSocketNotifier or select), or ``wait(timeout)``. It then ``take()``s
the queued ReceivedBatch objects. Control requests are routed by message type; a viewer
adds its own with ``handle(type, handler)`` (see ``control``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from platestream.schemas import (
    Batch,
    DisplayState,
    DropReason,
    Probe,
    StatusReport,
    WireError,
    decode_message,
)

from .control import ControlRouter, Handler
from .counters import ReceiverCounters
from .display_queue import DisplayQueue, ReceivedBatch
from .ingest import Ingest
from .receiver_control import BuiltinHandlers
from .security import CurveServer, InsecureBindError, ZapAuthenticator, is_loopback

log = logging.getLogger(__name__)

#: Handled by the receiver itself; the viewer cannot replace them.
INTERNAL = frozenset({"ping", "attach", "detach", "sync", "status"})
DATA_DRAIN = 64  # data messages per loop turn, so control requests wait at most that long


@dataclass(frozen=True)
class ReceiverOptions:
    """Where the receiver listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 5555  # the data port; 0 picks a free pair (data, data + 1000)
    max_message_bytes: int = 1 << 30  # a bigger message is counted 'oversized' and dropped
    max_header_bytes: int = 4 << 20
    queue_batches: int = 256
    queue_bytes: int = 1 << 30
    max_producers: int = 1024
    max_pending: int = 4096  # held pongs and syncs
    recycle_bytes: int = 512 << 20  # receive buffers kept for reuse once unreferenced
    zero_copy: bool = False  # lend views of producers' pools instead of copying (see lease)
    curve: CurveServer | None = None  # required when host is not a loopback address


class Receiver:
    def __init__(self, options: ReceiverOptions | None = None, *, viewer_id: str = "") -> None:
        self.options = options or ReceiverOptions()
        if self.options.curve is None and not is_loopback(self.options.host):
            raise InsecureBindError(
                f"refusing to listen on {self.options.host} without CURVE authentication; "
                "bind 127.0.0.1 or pass ReceiverOptions(curve=...)"
            )
        self.viewer_id = viewer_id or secrets.token_hex(8)
        self.started_at = time.time()
        self.ready = True
        self.counters = ReceiverCounters(self.options.max_producers)
        self.queue = DisplayQueue(
            self.options.queue_batches, self.options.queue_bytes, self._queue_dropped
        )
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[], None]] = []
        self.display_state: Callable[[], DisplayState] = DisplayState
        self._arrival_lock = threading.Condition()
        self._signalled = False
        self._arrival_r, self._arrival_w = os.pipe()
        self._wake_r, self._wake_w = os.pipe()
        self._polling: tuple[tuple[bool, tuple[int, ...]], zmq.Poller] | None = None
        for fd in (self._arrival_r, self._arrival_w, self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            # The ZAP handler is bound before any CURVE socket: nothing gets in unchecked.
            curve = self.options.curve
            self.zap = ZapAuthenticator(self.context, curve.allowed) if curve else None
            self.data, self.control = self._bind()
        except BaseException:  # e.g. the port is taken: leave no socket or descriptor
            self.context.destroy(linger=0)
            self._close_fds()
            raise
        self.data_port = int(self.data.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self.control_port = self.data_port + 1000
        self.router = ControlRouter(self.control, self.counters, self._wake)
        self.ingest = Ingest(self)
        self.builtins = BuiltinHandlers(self)

    # ------------------------------------------------------------------ sockets

    def _socket(self, kind: int, hard_limit: int) -> zmq.Socket[bytes]:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.IPV6, 1)
        # Hard limit per frame: a peer sending more is disconnected by libzmq before we
        # allocate it. Below it, the cap is ours, and oversized messages are counted.
        sock.setsockopt(zmq.MAXMSGSIZE, hard_limit)
        if self.options.curve is not None:
            self.options.curve.apply(sock)
        return sock

    def _bind(self) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
        data = self._socket(zmq.SUB, 2 * self.options.max_message_bytes)
        data.setsockopt(zmq.SUBSCRIBE, b"")
        data.rcvhwm = 8192
        control = self._socket(zmq.ROUTER, 4 << 20)
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        if self.options.port:
            data.bind(f"tcp://{host}:{self.options.port}")
            control.bind(f"tcp://{host}:{self.options.port + 1000}")
            return data, control
        for _attempt in range(200):  # a free (data, data + 1000) pair
            port = data.bind_to_random_port(f"tcp://{host}", min_port=20000, max_port=60000)
            try:
                control.bind(f"tcp://{host}:{port + 1000}")
                return data, control
            except zmq.ZMQError:
                data.unbind(data.getsockopt_string(zmq.LAST_ENDPOINT))
        raise OSError("no free pair of ports (data, data + 1000)")

    # -------------------------------------------------------------- display API

    def on_arrival(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the receive thread) whenever a batch was queued."""
        self._callbacks.append(callback)

    def arrival_fd(self) -> int:
        """A descriptor that is readable while batches are queued (drained by ``take``)."""
        return self._arrival_r

    def wait(self, timeout_s: float) -> bool:
        """Block until a batch is queued; False on timeout."""
        with self._arrival_lock:
            return self._arrival_lock.wait_for(lambda: len(self.queue) > 0, timeout_s)

    def take(self, max_batches: int | None = None) -> list[ReceivedBatch]:
        """The queued batches, oldest first. Frees room, so paused reading resumes."""
        batches, unblocked = self.queue.take_unblocking(max_batches)
        with self._arrival_lock:
            if not len(self.queue) and self._signalled:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._arrival_r, 4096)
                self._signalled = False
        if unblocked:  # reading was paused for want of room: resume it now
            self._wake()
        return batches

    def handle(self, message_type: str, handler: Handler) -> None:
        """Route control requests of ``message_type`` to ``handler``.

        ``clear`` and ``shutdown`` run their built-in effect first (queue emptied, serving
        stops after the reply); the handler's return value is the reply. Any other type
        defined in ``platestream.schemas`` (``snapshot``, or one you add) is the handler's.
        """
        if message_type in INTERNAL:
            raise ValueError(f"{message_type!r} is handled by the receiver itself")
        self.builtins.user_handlers[message_type] = handler
        if message_type not in self.builtins.wrapped:
            self.router.register(message_type, handler)

    def set_ready(self, ready: bool) -> None:
        """What pongs report as ``state.ready`` (e.g. False while napari starts)."""
        self.ready = ready

    def report_display(self, provider: Callable[[], DisplayState]) -> None:
        """What pongs and status reports say about the display (``state.display``).

        ``provider`` is called in the receive thread: return a value prepared elsewhere
        (e.g. the last one the GUI published), never touch the GUI from it.
        """
        self.display_state = provider

    def stats(self) -> StatusReport:
        """A StatusReport of every counter, as the ``status`` request returns it."""
        return self.builtins.status_report()

    # ------------------------------------------------------------------ serving

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"platestream-receiver-{self.data_port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until ``stop()`` or a shutdown request."""
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                self.serve_once(1.0)
        finally:
            self.router.flush_outbox()  # the shutdown's reply
            self._stopped.set()

    def serve_once(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for activity, handle everything ready; events handled."""
        timeout = min(timeout_s, self.builtins.next_deadline() - time.monotonic())
        ready = dict(self._poller().poll(max(0, int(timeout * 1000)) + 1))
        handled = self._handle_ready(ready)
        for producer in self.ingest.leases.changed():
            self.builtins.batch_done(producer)
        self.builtins.expire()
        self.router.flush_outbox()
        return handled

    def _poller(self) -> zmq.Poller:
        """What to wait on: the data socket unless reading is paused (the display queue is
        full), control, wake-ups, ZAP, producers' pidfds. Rebuilt only when that changes."""
        paused = self.queue.blocked()
        fds = tuple(self.ingest.watched_fds())
        if self._polling is None or self._polling[0] != (paused, fds):
            poller = zmq.Poller()
            if not paused:
                poller.register(self.data, zmq.POLLIN)
            poller.register(self.control, zmq.POLLIN)
            poller.register(self._wake_r, zmq.POLLIN)
            if self.zap is not None:
                poller.register(self.zap.socket, zmq.POLLIN)
            for fd in fds:
                poller.register(fd, zmq.POLLIN)
            self._polling = ((paused, fds), poller)
        return self._polling[1]

    def _handle_ready(self, ready: dict[Any, int]) -> int:
        handled = 0
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        if self.zap is not None and self.zap.socket in ready:
            self.zap.handle()
            handled += 1
        if self.control in ready:
            handled += self.router.drain()
        if self.data in ready:
            handled += self._drain_data()
        for fd in self.ingest.watched_fds():
            if fd in ready:
                self.ingest.producer_exited(fd)
                handled += 1
        return handled

    def _drain_data(self) -> int:
        handled = 0
        while handled < DATA_DRAIN and not self.queue.blocked():
            try:
                frames = self.data.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            handled += 1
            self._on_data(frames)
        return handled

    def _on_data(self, frames: list[zmq.Frame]) -> None:
        total = sum(len(f) for f in frames)
        if total > self.options.max_message_bytes or len(frames[0]) > self.options.max_header_bytes:
            self.counters.drop(DropReason.OVERSIZED)
            return
        try:
            message = decode_message(frames[0].bytes, port="data")
        except WireError as err:
            self.counters.drop(err.reason)
            return
        if isinstance(message, Probe):
            if len(frames) != 1:
                self.counters.drop(DropReason.TRUNCATED)
                return
            self.builtins.probe_arrived(message.token)
        elif isinstance(message, Batch):
            try:
                batch = self.ingest.batch(message, frames[1:])
            except Exception:  # a bug here must cost one batch, never the receiver
                log.exception("failed to take in batch %s of %s", message.seq, message.producer)
                self.counters.drop(DropReason.INTERNAL, 1, message.producer)
                batch = None
            if batch is not None and self.queue.put(batch):
                self._signal_arrival()
            self.builtins.batch_done(message.producer)

    def _signal_arrival(self) -> None:
        with self._arrival_lock:
            if not self._signalled:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._arrival_w, b"x")
                self._signalled = True
            self._arrival_lock.notify_all()
        for callback in self._callbacks:
            callback()

    def _queue_dropped(self, producer: str, reason: DropReason, images: int) -> None:
        self.counters.drop(reason, images, producer)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_stopped(self, timeout_s: float) -> bool:
        """Wait until serving has ended (a ``shutdown`` request or ``stop()``)."""
        return self._stopped.wait(timeout_s)

    def stop(self) -> None:
        """Ask the serving thread to stop (from any thread)."""
        self._stop.set()
        self._wake()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving, release every pool, close sockets and descriptors."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._stopped.wait(timeout_s)
        self.ingest.close()
        if self.zap is not None:
            self.zap.close()
        self.data.close(linger=0)
        self.control.close(linger=0)
        self.context.term()
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._arrival_r, self._arrival_w, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
