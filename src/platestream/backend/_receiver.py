"""The Qt-free receiver: what a viewer process runs to get images off the wire.

One object, ``Receiver``, and the private parts it calls (it owns them; they never reach
back into it):

* the **sockets**: it binds the data port (SUB) and the control port (ROUTER, data port +
  1000), as the persistent side does. One thread - ``start()``, or your own calling
  ``serve_forever()`` - owns them and reacts to arrivals (no timer polling).
* **intake**: every message is validated; pixels are copied out of the producers' pools the
  moment a batch arrives (so producers can reuse their slots) - or, with ``zero_copy``,
  lent as read-only views of the slots until the display releases them (``shm.LeaseBook``)
  - and the batches are queued for the display (``DisplayQueue``). Message-level faults
  (frames that do not match the header, a display config the config classes reject) drop
  the batch; image-level faults (an unknown pool or slot, a slot rewritten during the
  copy) drop that image. Either way the batch counts as done.
* **pools** (``_PoolTable``): mapped per producer and released when it detaches or its
  process exits - seen at once through a pidfd on Linux, else by checking the pid every
  second.
* the **control requests** it answers itself: the handshake, pools, acknowledgements,
  status, and the built-in halves of ``clear`` and ``shutdown``. Two requests are held
  rather than answered at once. A ``ping`` with a token waits until that token arrives as
  a ``probe`` on the data port - the proof that the producer's data path is live - or
  until its ``wait_s`` passes. A ``sync`` waits until its producer has more batches done
  than it knows of - the acknowledgement - or until its ``wait_s`` passes, which makes it
  the producer's heartbeat too. Held requests are bounded per connection and in all
  (``HeldRequests``): past a bound the oldest is answered early, so a flood from one
  client never keeps another's handshake from being held. A pool is detached only by the
  producer that attached it: ``detach`` must repeat the secret key ``attach`` gave.
* **acknowledgements** have one owner, ``_acknowledge``: a batch is done - reported to its
  producer, which may then rewrite its slots - once it is taken in and none of its images
  is still on loan.

The display side is woken on arrival two ways, pick one: ``on_arrival(callback)`` (called
in the receive thread; emit a Qt signal from it) or ``wait(timeout)``. It then ``take()``s
the queued ReceivedBatch objects. Control requests are routed by message type; a viewer
adds its own with ``handle(type, handler)`` (see ``_control_router``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import zmq

from platestream.layering import shows
from platestream.schemas import (
    PROTOCOL_VERSION,
    Attach,
    Attached,
    Batch,
    Clear,
    Detach,
    DisplayState,
    DropReason,
    Error,
    ErrorCode,
    InlinePixels,
    Message,
    Ok,
    Ping,
    Pong,
    PoolInfo,
    Probe,
    ShmPixels,
    Shown,
    Shutdown,
    StatusReport,
    Sync,
    Synced,
    ViewerState,
    WaitShown,
    WireError,
    WireItem,
    decode_message,
    display_from_wire,
)

from ._control_router import (
    DEFER,
    ControlReply,
    ControlRequest,
    ControlRouter,
    Deferred,
    Handler,
    HeldRequests,
)
from ._counters import ReceiverCounters
from ._display_queue import DisplayQueue, ReceivedBatch, ReceivedImage
from ._pids import pid_alive, pidfd_open
from ._security import CurveServer, InsecureBindError, KeyStore, ZapAuthenticator, is_loopback
from .shm import (
    BufferRecycler,
    LeaseBook,
    Overwritten,
    PoolReader,
    SegmentError,
    SlotError,
)

log = logging.getLogger(__name__)

#: Handled by the receiver itself; the viewer cannot replace them.
INTERNAL = frozenset({"ping", "attach", "detach", "sync", "status"})
#: Run their built-in effect first, then the viewer's handler, if any.
WRAPPED = frozenset({"clear", "shutdown"})
DATA_DRAIN = 64  # data messages per loop turn, so control requests wait at most that long
MAX_FAILURES = 100  # failed loop turns in a row that end serving (something is broken for good)
RECENT_PROBES = 256
LIVENESS_CHECK_S = 1.0
HOSTNAME = socket.gethostname()


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
    max_pending: int = 4096  # held pongs and syncs, in all
    # Shared memory the producers may have in flight at once, shared out among them (each
    # at least window_min_bytes): many producers do not each grow a whole pool's pages.
    window_bytes: int = 256 << 20
    window_min_bytes: int = 32 << 20
    max_pending_per_client: int = 16  # held pongs and syncs of one connection
    recycle_bytes: int = 512 << 20  # receive buffers kept for reuse once unreferenced
    zero_copy: bool = False  # lend views of producers' pools instead of copying (see lease)
    # None: this user's own keys (KeyStore.local_server); required beyond loopback
    curve: CurveServer | None = None
    show: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # see layering.shows


def resident_bytes() -> int:
    """This process's resident memory (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


_DTYPES: dict[Any, np.dtype[Any]] = {}


def _dtype(item: WireItem) -> np.dtype[Any]:
    dtype = _DTYPES.get(item.dtype)
    if dtype is None:
        dtype = _DTYPES[item.dtype] = np.dtype(item.dtype.value).newbyteorder("<")
    return dtype


def _expected_bytes(item: WireItem) -> int:
    return math.prod(item.shape) * _dtype(item).itemsize


class _PoolTable:
    """The producers' pools this receiver has mapped, and the pidfds that watch their owners.

    Its collaborators are passed in: the counters (each producer's ``pool`` and ``pid``
    fields are shown in status) and the lease book (a released pool's leases are forgotten).
    """

    def __init__(self, counters: ReceiverCounters, leases: LeaseBook, max_producers: int) -> None:
        self._counters = counters
        self._leases = leases
        self._max_producers = max_producers
        self.readers: dict[str, PoolReader] = {}  # by producer id
        self._keys: dict[str, str] = {}  # the secret each producer's attach gave
        self._pidfds: dict[int, str] = {}  # pidfd -> producer id
        self._last_liveness = time.monotonic()

    def __len__(self) -> int:
        return len(self.readers)

    def reader(self, producer: str, pixels: ShmPixels) -> PoolReader:
        pool = self.readers.get(producer)
        if pool is None or pool.id != pixels.pool:
            raise SlotError(f"no pool {pixels.pool} attached for {producer}")
        return pool

    def owned(self, producer: str, key: str) -> bool:
        """True unless ``producer`` has a pool attached under another key."""
        known = self._keys.get(producer)
        return known is None or secrets.compare_digest(known, key)

    def attach(self, producer: str, pid: int, info: PoolInfo, key: str) -> None:
        """Map a producer's pool; raises SegmentError (OSError) if it cannot be, and
        PermissionError if ``producer`` has a pool attached under another key."""
        if not self.owned(producer, key):
            raise PermissionError(f"{producer} has a pool attached by someone else")
        current = self.readers.get(producer)
        if current is not None and current.id == info.id:
            return  # the same pool again, after a reconnect
        if current is None and len(self.readers) >= self._max_producers:
            raise SegmentError(0, f"already {len(self.readers)} pools mapped; send inline")
        reader = PoolReader(info, pid)
        self.release(producer)
        self.readers[producer] = reader
        self._keys[producer] = key
        pidfd = pidfd_open(pid)
        if pidfd is not None:
            self._pidfds[pidfd] = producer
        with self._counters.lock:
            counters = self._counters.producer(producer)
            counters.pid, counters.pool = pid, info.id

    def release(self, producer: str) -> None:
        with self._counters.lock:  # first, so no status shows a pool count without its owner
            if producer in self._counters.producers:
                self._counters.producers[producer].pool = ""
        reader = self.readers.get(producer)
        if reader is not None:
            reader.close()  # views still lent out keep the mapping until they go
            self._leases.forget(producer)
            del self.readers[producer]  # last: a status showing no pool means none is mapped
        self._keys.pop(producer, None)
        for fd in [fd for fd, owner in self._pidfds.items() if owner == producer]:
            del self._pidfds[fd]
            os.close(fd)

    def watched_fds(self) -> list[int]:
        self._check_liveness()
        return list(self._pidfds)

    def producer_exited(self, pidfd: int) -> None:
        producer = self._pidfds.get(pidfd)
        if producer is not None:
            log.info("producer %s exited; its pool is released", producer)
            self.release(producer)

    def _check_liveness(self) -> None:
        """Without pidfds, find producers that exited by their pid, once a second."""
        now = time.monotonic()
        if now - self._last_liveness < LIVENESS_CHECK_S:
            return
        self._last_liveness = now
        watched = set(self._pidfds.values())
        for producer, reader in list(self.readers.items()):
            if producer not in watched and not pid_alive(reader.pid):
                self.release(producer)

    def close(self) -> None:
        for producer in list(self.readers):
            self.release(producer)


class Receiver:
    """Binds a viewer's two ports and turns what arrives into ``ReceivedBatch`` objects."""

    def __init__(self, options: ReceiverOptions | None = None, *, viewer_id: str = "") -> None:
        self.options = options or ReceiverOptions()
        if self.options.curve is None and not is_loopback(self.options.host):
            raise InsecureBindError(
                f"refusing to listen on {self.options.host} without CURVE authentication; "
                "bind 127.0.0.1, or give CURVE keys (platestream viewer start --keys DIR; "
                "in Python ReceiverOptions(curve=...))"
            )
        # On loopback too, only this user's producers and tools get in (see _security).
        self.curve = self.options.curve or KeyStore().local_server()
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
        self._layouts: dict[str, dict[str, tuple[int | str, ...]]] = {}  # by producer
        self._layouts_lock = threading.Lock()
        self._died_callbacks: list[Callable[[], None]] = []
        self.died = False
        self._display_state: Callable[[], DisplayState] = DisplayState
        self._arrival_lock = threading.Condition()
        self._wake_r, self._wake_w = os.pipe()
        self._polling: tuple[tuple[bool, tuple[int, ...]], zmq.Poller] | None = None
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            # The ZAP handler is bound before any CURVE socket: nothing gets in unchecked.
            self.zap = ZapAuthenticator(self.context, self.curve.allowed)
            self.data, self.control = self._bind()
        except BaseException:  # e.g. the port is taken: leave no socket or descriptor
            self.context.destroy(linger=0)
            self._close_fds()
            raise
        self.data_port = int(self.data.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self.control_port = self.data_port + 1000
        # Intake: pools, leases and receive buffers (owned by the receive thread).
        self._leases = LeaseBook(self._wake)
        self._pools = _PoolTable(self.counters, self._leases, self.options.max_producers)
        self._recycler = BufferRecycler(self.options.recycle_bytes)
        self._display_cache: tuple[Any, Any] = (None, None)
        # Held control requests.
        self._probes: dict[str, tuple[ControlRequest, float]] = {}  # token -> (ping, deadline)
        self._recent_probes: OrderedDict[str, None] = OrderedDict()  # probes that came first
        self._syncs: dict[str, list[tuple[ControlRequest, int, float]]] = {}
        self._held = HeldRequests(self.options.max_pending_per_client, self.options.max_pending)
        self._waits: list[tuple[ControlRequest, int, float]] = []  # wait_shown: count, deadline
        self._user_handlers: dict[str, Handler] = {}
        self.router = ControlRouter(self.control, self.counters, self._wake)
        for message_type, handler in (
            ("ping", self._on_ping),
            ("attach", self._on_attach),
            ("detach", self._on_detach),
            ("sync", self._on_sync),
            ("status", self._on_status),
            ("wait_shown", self._on_wait_shown),
            ("clear", self._on_clear),
            ("shutdown", self._on_shutdown),
        ):
            self.router.register(message_type, handler)

    # ------------------------------------------------------------------ sockets

    def _socket(self, kind: int, hard_limit: int) -> zmq.Socket[bytes]:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.IPV6, 1)
        # Hard limit per frame: a peer sending more is disconnected by libzmq before we
        # allocate it. Below it, the cap is ours, and oversized messages are counted.
        sock.setsockopt(zmq.MAXMSGSIZE, hard_limit)
        self.curve.apply(sock)
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

    def wait(self, timeout_s: float) -> bool:
        """Block until a batch is queued; False on timeout."""
        with self._arrival_lock:
            return self._arrival_lock.wait_for(lambda: len(self.queue) > 0, timeout_s)

    def take_layouts(self) -> list[dict[str, tuple[int | str, ...]]]:
        """The plate layouts producers declared since the last call (``Batch.layout``)."""
        with self._layouts_lock:
            layouts, self._layouts = list(self._layouts.values()), {}
        return layouts

    def take(
        self, max_batches: int | None = None, max_bytes: int | None = None
    ) -> list[ReceivedBatch]:
        """The queued batches, oldest first (see ``DisplayQueue.take``). Frees room, so
        paused reading resumes."""
        batches, unblocked = self.queue.take_unblocking(max_batches, max_bytes)
        if unblocked:  # reading was paused for want of room: resume it now
            self._wake()
        return batches

    def received_images(self) -> int:
        """Images taken in so far (every producer)."""
        with self.counters.lock:
            return self.counters.images

    def count_dropped(self, reason: DropReason, images: int, producer: str | None) -> None:
        """Count images the display could not show (e.g. a lent slot torn before display)."""
        self.counters.drop(reason, images, producer)
        self.display_changed()  # a wait_shown may be reached by drops too

    def handle(self, message_type: str, handler: Handler) -> None:
        """Route control requests of ``message_type`` to ``handler``.

        ``clear`` and ``shutdown`` run their built-in effect first (queue emptied, serving
        stops after the reply); the handler's return value is the reply. Any other type
        defined in ``platestream.schemas`` (``snapshot``, or one you add) is the handler's.
        """
        if message_type in INTERNAL:
            raise ValueError(f"{message_type!r} is handled by the receiver itself")
        self._user_handlers[message_type] = handler
        if message_type not in WRAPPED:
            self.router.register(message_type, handler)

    def set_ready(self, ready: bool) -> None:
        """What pongs report as ``state.ready`` (e.g. False while napari starts)."""
        self.ready = ready

    def report_display(self, provider: Callable[[], DisplayState]) -> None:
        """What pongs and status reports say about the display (``state.display``).

        ``provider`` is called in the receive thread: return a value prepared elsewhere
        (e.g. the last one the GUI published), never touch the GUI from it.
        """
        self._display_state = provider

    def display_changed(self) -> None:
        """The display showed (or dropped) images: held ``wait_shown`` requests are
        looked at again. Call from any thread, e.g. after publishing a new state."""
        if self._waits:
            self._wake()

    def state(self) -> ViewerState:
        """What pongs report: readiness, producers, counts, queue, memory, display."""
        with self.counters.lock:
            producers, received = len(self.counters.producers), self.counters.images
        return ViewerState(
            ready=self.ready,
            producers=producers,
            received=received,
            dropped=self.counters.total_dropped(),
            queue_depth=len(self.queue),
            queue_bytes=self.queue.nbytes,
            memory_bytes=resident_bytes(),
            filtered=self.counters.filtered,
            display=self._display_state(),
        )

    def stats(self) -> StatusReport:
        """A StatusReport of every counter, as the ``status`` request returns it."""
        with self.counters.lock:
            batches, images, nbytes = (
                self.counters.batches,
                self.counters.images,
                self.counters.bytes,
            )
        return StatusReport(
            viewer_id=self.viewer_id,
            state=self.state(),
            batches=batches,
            images=images,
            bytes=nbytes,
            dropped=self.counters.dropped_by_reason(),
            auth_denied=self.zap.denied,
            pools=len(self._pools),
            producers=self.counters.producer_reports(),
        )

    # ------------------------------------------------------------------ serving

    def on_died(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the receive thread) if serving ends by a failure: the
        viewer cannot receive any more and should say so and exit, not live on deaf."""
        self._died_callbacks.append(callback)

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._serve_in_thread,
            name=f"platestream-receiver-{self.data_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        except BaseException:
            self.died = True
            log.critical(
                "the receive thread failed; this viewer receives nothing more", exc_info=True
            )
            for callback in self._died_callbacks:
                callback()

    def serve_forever(self) -> None:
        """Serve until ``stop()`` or a shutdown request. A failure while handling one event
        is logged and counted (``internal``) and serving goes on; only ``MAX_FAILURES`` in a
        row end it (then ``on_died`` callbacks run when serving in ``start()``'s thread)."""
        self._stopped.clear()
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    self.serve_once(1.0)
                    failures = 0
                except Exception:
                    failures += 1
                    if failures >= MAX_FAILURES:
                        raise
                    log.exception("the receive loop failed on an event; it carries on")
                    self.counters.drop(DropReason.INTERNAL)
        finally:
            with contextlib.suppress(Exception):
                self.router.flush_outbox()  # the shutdown's reply
            self._stopped.set()

    def serve_once(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for activity, handle everything ready; events handled."""
        timeout = min(timeout_s, self._next_deadline() - time.monotonic())
        ready = dict(self._poller().poll(max(0, int(timeout * 1000)) + 1))
        handled = self._handle_ready(ready)
        for producer in self._leases.changed():
            self._acknowledge(producer)
        self._expire_held()
        self._answer_waits()
        self.router.flush_outbox()
        return handled

    def _poller(self) -> zmq.Poller:
        """What to wait on: the data socket unless reading is paused (the display queue is
        full), control, wake-ups, ZAP, producers' pidfds. Rebuilt only when that changes."""
        paused = self.queue.blocked()
        fds = tuple(self._pools.watched_fds())
        if self._polling is None or self._polling[0] != (paused, fds):
            poller = zmq.Poller()
            if not paused:
                poller.register(self.data, zmq.POLLIN)
            poller.register(self.control, zmq.POLLIN)
            poller.register(self._wake_r, zmq.POLLIN)
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
        if self.zap.socket in ready:
            self.zap.handle()
            handled += 1
        if self.control in ready:
            handled += self.router.drain()
        if self.data in ready:
            handled += self._drain_data()
        for fd in self._pools.watched_fds():
            if fd in ready:
                self._pools.producer_exited(fd)
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
            self._probe_arrived(message.token)
        elif isinstance(message, Batch):
            if message.layout:  # kept apart from the batch: a dropped batch still tells it
                with self._layouts_lock:
                    self._layouts[message.producer] = dict(message.layout)
            try:
                batch = self._take_in(message, frames[1:])
            except Exception:  # a bug here must cost one batch, never the receiver
                log.exception("failed to take in batch %s of %s", message.seq, message.producer)
                self.counters.drop(DropReason.INTERNAL, 1, message.producer)
                batch = None
            if batch is not None and self.queue.put(batch):
                self._signal_arrival()
            self._acknowledge(message.producer)

    def _signal_arrival(self) -> None:
        with self._arrival_lock:
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
        self._pools.close()
        self.zap.close()
        self.data.close(linger=0)
        self.control.close(linger=0)
        self.context.term()
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ intake

    def _take_in(self, batch: Batch, frames: list[zmq.Frame]) -> ReceivedBatch | None:
        """Copy (or lend) a batch out; None if nothing of it survives. Counts everything."""
        self._note_sequence(batch)
        try:
            display = self._display(batch.display)
            _check_frames(batch, frames)
        except WireError as err:
            self.counters.drop(err.reason, 1, batch.producer)
            return None
        images = []
        show = self.options.show
        for item in batch.items:
            if show and not shows(show, item.components, item.step_index, item.step_name):
                with self.counters.lock:  # a producer that ignored the handshake's filter
                    self.counters.filtered += 1
                continue
            image = self._image(batch, item, frames)
            if image is not None:
                images.append(image)
        nbytes = sum(image.data.nbytes for image in images)
        self.counters.received(batch.producer, len(images), nbytes)
        if not images:
            return None
        return ReceivedBatch(
            producer=batch.producer,
            seq=batch.seq,
            delivery=batch.delivery,
            display=display,
            images=tuple(images),
            saved_at=batch.saved_at,
            sent_at=batch.sent_at,
            received_at=time.time(),
        )

    def _note_sequence(self, batch: Batch) -> None:
        with self.counters.lock:
            producer = self.counters.producer(batch.producer)
            gap = batch.seq - producer.last_seq - 1 if producer.last_seq else 0
            producer.last_seq = batch.seq
        if gap > 0:  # batches that never arrived (the viewer restarted, a queue overflowed)
            self.counters.drop(DropReason.LOST, gap, batch.producer)

    def _display(self, values: Any) -> Any:
        cached_values, cached_config = self._display_cache
        if values == cached_values:
            return cached_config  # producers send the same config batch after batch
        try:
            config = display_from_wire(values)
        except (ValueError, TypeError) as err:
            raise WireError(DropReason.BAD_SCHEMA, f"display: {err}"[:400]) from None
        self._display_cache = (values, config)
        return config

    def _image(self, batch: Batch, item: WireItem, frames: list[zmq.Frame]) -> ReceivedImage | None:
        pixels = item.pixels
        producer = batch.producer
        try:
            if isinstance(pixels, ShmPixels):
                pool = self._pools.reader(producer, pixels)
                dtype = _dtype(item)
                if self.options.zero_copy and pool.lendable:
                    view, entry = pool.view(pixels, item.shape, dtype)
                    lease = self._leases.lend(producer, batch.seq, view, entry, pixels.generation)
                    lease.forget = partial(pool.forget, pixels)
                    return ReceivedImage(item.image_item(), view, lease)
                out = self._recycler.empty(item.shape, dtype)
                data = pool.copy_out(pixels, item.shape, dtype, out)
                pool.forget(pixels)
            else:
                frame = frames[pixels.frame - 1]
                # The frame's memory is ours already: wrap it, no copy.
                data = np.frombuffer(frame.buffer, dtype=_dtype(item)).reshape(item.shape)
        except SlotError as err:
            log.debug("dropped an image of %s: %s", producer, err)
            self.counters.drop(DropReason.UNKNOWN_SLOT, 1, producer)
            return None
        except Overwritten:
            self.counters.drop(DropReason.OVERWRITTEN, 1, producer)
            return None
        return ReceivedImage(item.image_item(), data)

    # ------------------------------------------------------------ acknowledgements

    def _synced(self, producer: str) -> Synced:
        with self.counters.lock:
            state = self.counters.producers.get(producer)
            done = state.done_seq if state else 0
            dropped = {r.value: n for r, n in sorted(state.dropped.items())} if state else {}
        share = self.options.window_bytes // max(1, len(self._pools))
        window = max(self.options.window_min_bytes, share)
        return Synced(viewer_id=self.viewer_id, done_seq=done, dropped=dropped, window=window)

    def _acknowledge(self, producer_id: str) -> None:
        """Batches of ``producer_id`` were taken in or given back: advance what is done and
        answer its waiting syncs. Every batch taken in is done, up to the oldest with an
        image still on loan. The only place ``done_seq`` changes."""
        oldest = self._leases.oldest(producer_id)
        with self.counters.lock:
            producer = self.counters.producer(producer_id)
            done = producer.last_seq if oldest is None else oldest - 1
            producer.done_seq = max(producer.done_seq, done)
        held = self._syncs.get(producer_id)
        if not held:
            return
        reply = self._synced(producer_id)
        for request, after, _deadline in held:
            if after < reply.done_seq:
                request.reply(reply)
        self._syncs[producer_id] = [entry for entry in held if entry[1] >= reply.done_seq]

    # ------------------------------------------------------------ held requests

    def _next_deadline(self) -> float:
        deadlines = [d for _, d in self._probes.values()]
        deadlines += [d for held in self._syncs.values() for _, _, d in held]
        deadlines += [d for _, _, d in self._waits]
        return min(deadlines, default=time.monotonic() + 3600.0)

    def _expire_held(self) -> None:
        """Answer held requests whose wait is over."""
        now = time.monotonic()
        for token, (request, deadline) in list(self._probes.items()):
            if deadline <= now:
                del self._probes[token]
                request.reply(self._pong(False))
        for producer, held in list(self._syncs.items()):
            due = [entry for entry in held if entry[2] <= now]
            if due:
                reply = self._synced(producer)
                for request, _after, _deadline in due:
                    request.reply(reply)
                self._syncs[producer] = [entry for entry in held if entry[2] > now]

    # ------------------------------------------------------------ control requests

    def _pong(self, probe_seen: bool) -> Pong:
        return Pong(
            protocol=PROTOCOL_VERSION,
            viewer_id=self.viewer_id,
            pid=os.getpid(),
            host=HOSTNAME,
            data_port=self.data_port,
            control_port=self.control_port,
            started_at=self.started_at,
            probe_seen=probe_seen,
            state=self.state(),
            show=dict(self.options.show),
        )

    def _on_ping(self, request: ControlRequest) -> Message | Deferred:
        assert isinstance(request.message, Ping)
        token, wait_s = request.message.token, request.message.wait_s
        if not token:
            return self._pong(False)
        if token in self._recent_probes:
            del self._recent_probes[token]
            return self._pong(True)
        if wait_s <= 0:
            return self._pong(False)
        self._answer_ping(token)  # a ping held under the same token gets its answer now
        self._probes[token] = (request, time.monotonic() + wait_s)
        self._held.hold(request, partial(self._answer_ping, token))
        return DEFER

    def _answer_ping(self, token: str) -> None:
        """Answer the ping held for ``token`` now: the probe has not come (yet)."""
        held = self._probes.pop(token, None)
        if held is not None:
            held[0].reply(self._pong(False))

    def _probe_arrived(self, token: str) -> None:
        held = self._probes.pop(token, None)
        if held is not None:
            held[0].reply(self._pong(True))
            return
        # The probe overtook its ping (the data path was faster): remember it briefly.
        self._recent_probes[token] = None
        while len(self._recent_probes) > RECENT_PROBES:
            self._recent_probes.popitem(last=False)

    def _on_attach(self, request: ControlRequest) -> Message:
        message = request.message
        assert isinstance(message, Attach)
        if request.peer and not is_loopback(request.peer):
            return Error(code=ErrorCode.REFUSED, message="shared memory is for local producers")
        try:
            self._pools.attach(message.producer, message.pid, message.pool, message.key)
        except PermissionError as err:
            log.warning("refused an attach for %s: %s", message.producer, err)
            return Error(code=ErrorCode.REFUSED, message=str(err))
        except (SegmentError, OSError) as err:
            log.info("refused pool %s of %s: %s", message.pool.id, message.producer, err)
            return Error(code=ErrorCode.REFUSED, message=str(err)[:4000])
        return Attached(pool=message.pool.id)

    def _on_detach(self, request: ControlRequest) -> Message:
        message = request.message
        assert isinstance(message, Detach)
        if not self._pools.owned(message.producer, message.key):
            log.warning("refused a detach of %s: not the key of its attach", message.producer)
            refusal = "only the producer that attached a pool may detach it"
            return Error(code=ErrorCode.REFUSED, message=refusal)
        self._pools.release(message.producer)
        for held, _after, _deadline in self._syncs.pop(message.producer, []):
            held.reply(self._synced(message.producer))
        return Ok()

    def _on_sync(self, request: ControlRequest) -> Message | Deferred:
        message = request.message
        assert isinstance(message, Sync)
        reply = self._synced(message.producer)
        if reply.done_seq > message.after or message.wait_s <= 0:
            return reply
        deadline = time.monotonic() + message.wait_s
        self._syncs.setdefault(message.producer, []).append((request, message.after, deadline))
        self._held.hold(request, partial(self._answer_sync, message.producer, request))
        return DEFER

    def _answer_sync(self, producer: str, request: ControlRequest) -> None:
        """Answer a held sync now, with what is done so far."""
        held = [entry for entry in self._syncs.get(producer, []) if entry[0] is not request]
        if held:
            self._syncs[producer] = held
        else:
            self._syncs.pop(producer, None)
        request.reply(self._synced(producer))

    def _shown(self) -> Shown:
        dropped = sum(self.counters.dropped_by_reason().values())
        displayed = self._display_state().displayed
        return Shown(displayed=displayed, dropped=dropped, queued=len(self.queue))

    def _on_wait_shown(self, request: ControlRequest) -> Message | Deferred:
        message = request.message
        assert isinstance(message, WaitShown)
        shown = self._shown()
        if shown.accounted >= message.count or message.wait_s <= 0:
            return shown
        entry = (request, message.count, time.monotonic() + message.wait_s)
        self._waits.append(entry)
        self._held.hold(request, partial(self._answer_wait, request))
        return DEFER

    def _answer_wait(self, request: ControlRequest) -> None:
        """Answer a held wait_shown now, with what is accounted for so far."""
        self._waits = [entry for entry in self._waits if entry[0] is not request]
        request.reply(self._shown())

    def _answer_waits(self) -> None:
        """Answer the held wait_shown requests whose count was reached or time is up."""
        if not self._waits:
            return
        shown = self._shown()
        now = time.monotonic()
        due = [e for e in self._waits if shown.accounted >= e[1] or e[2] <= now]
        if due:
            self._waits = [e for e in self._waits if e not in due]
            for request, _count, _deadline in due:
                request.reply(shown)

    def _on_status(self, request: ControlRequest) -> Message:
        return self.stats()

    def _user(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        handler = self._user_handlers.get(request.message.TYPE)
        return Ok() if handler is None else handler(request)

    def _on_clear(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        assert isinstance(request.message, Clear)
        self.queue.clear()  # counted as 'cleared': the user asked, but nothing goes uncounted
        return self._user(request)

    def _on_shutdown(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        message = request.message
        assert isinstance(message, Shutdown)
        if not secrets.compare_digest(message.viewer_id, self.viewer_id):
            return Error(
                code=ErrorCode.WRONG_VIEWER,
                message=f"this is viewer {self.viewer_id}, not {message.viewer_id}",
            )
        result = self._user(request)
        self.stop()  # the loop sends the reply before it ends
        return result


def _check_frames(batch: Batch, frames: list[zmq.Frame]) -> None:
    used: set[int] = set()
    for item in batch.items:
        pixels = item.pixels
        if _expected_bytes(item) != pixels.nbytes:
            raise WireError(
                DropReason.TRUNCATED,
                f"{item.shape} {item.dtype.value} != {pixels.nbytes} bytes",
            )
        if isinstance(pixels, InlinePixels):
            index = pixels.frame - 1
            if index in used or index >= len(frames) or len(frames[index]) != pixels.nbytes:
                raise WireError(DropReason.TRUNCATED, f"frame {pixels.frame} missing or wrong")
            used.add(index)
    if len(used) != len(frames):
        raise WireError(DropReason.TRUNCATED, f"{len(frames) - len(used)} unreferenced frames")
