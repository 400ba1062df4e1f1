"""One producer's connection to one viewer: ``Link``, the producer side's central object.

A link owns a PUB socket for data, a supervisor thread, its shared-memory pools and the
acknowledgements; the private parts it calls never reach back into it.

* The **supervisor** thread owns the control REQ socket. It performs the handshake - a
  ping the viewer answers only once the ping's token has arrived through this link's data
  path, so nothing is sent before the subscription is live, and nothing sleeps - then
  attaches the shared-memory pool (``_LinkPools``), then keeps one ``sync`` long-poll
  outstanding: the viewer answers it whenever it finished more of our batches (that is the
  acknowledgement channel) or after ``sync_wait_s`` (that is the heartbeat). A missing
  answer, a new viewer id or a dropped TCP connection puts the link down; it reconnects
  with backoff, forever, until closed.
* **Delivery** (``deliver``, called by a backend's ``save_batch`` in the caller's thread)
  never does control I/O: it reads the link state, writes pixels and publishes. Live: the
  call never waits longer than ``live_wait_s`` in total. With no viewer, images are dropped
  at once; with the pool full, a newer image of a plane takes over the slot of an older
  one the viewer has not read yet, and otherwise the new image is dropped. Lossless: the
  call waits for the viewer (handshake, free slots, inline window) until
  ``lossless_budget_s`` has passed, then reports what it could not deliver. Either way
  every drop is counted by reason in the returned SaveReport. Pixels go to a pool slot
  when the link has one attached and the image fits, else inline: copied once into a
  private buffer (so the caller may reuse its array at once) and sent as a zero-copy
  frame. A batch is published early whenever the next image must wait, so the viewer can
  acknowledge what is already placed.
* **Acknowledgements** have one owner: ``acked_seq``, written only by the supervisor from
  the viewer's ``synced`` replies; the pool and the inline window read it.
* **Pools** (``_LinkPools``): tried in order, a memfd (Linux), then a named segment; the
  first the viewer maps wins. A pool that cannot be created (``/dev/shm`` or memory too
  small) sends the link to inline frames for good, with one warning. A viewer that refuses
  a pool (say it runs in another container) gets inline frames for that session only. A
  named pool's name is unlinked as soon as the attach is answered - or fails - so it never
  outlives the handshake.

Shared state is guarded by ``cond``; one delivery at a time holds ``send_lock``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import zmq

from platestream.config import DeliveryMode
from platestream.layering import ImageItem, plane_key, shows
from platestream.schemas import (
    Attach,
    Attached,
    Batch,
    Detach,
    DropReason,
    InlinePixels,
    Message,
    Ping,
    Pixels,
    Pong,
    PoolKind,
    Probe,
    Sync,
    Synced,
    WireItem,
    encode_message,
)

from ._control_client import ControlClient, ControlTimeout, control_endpoint, data_endpoint
from ._host_arrays import wire_dtype
from ._security import CurveClient
from .shm import HAS_MEMFD, BufferRecycler, SegmentError, SlotPool

log = logging.getLogger(__name__)

MONITORED = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
MAX_ITEMS_PER_MESSAGE = 256
WINDOW_START = 16 << 20  # in-flight shared memory before the viewer states a window
_REASONS = frozenset(r.value for r in DropReason)


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


@dataclass(frozen=True)
class OutgoingImage:
    """An image ready to send: its item (shape and dtype from the array) and host pixels."""

    item: ImageItem
    array: np.ndarray
    extra: Mapping[str, Any]  # item.extra as JSON values
    plane: Any = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Images with the same plane key show in the same place: newest wins in live mode.
        object.__setattr__(self, "plane", plane_key(self.item))


@dataclass
class SaveReport:
    """What one save/save_batch did: images sent, batches published, drops by reason.

    ``dropped`` counts images the producer did not send (and ``viewer_lost``: sent to a
    viewer that was replaced before it confirmed them). ``viewer_dropped`` counts sent
    images the viewer reported dropping (``overwritten``, ``rejected``, ...) since the last
    report: they arrive with the viewer's acknowledgements, so a call reports those of
    earlier calls, and ``backend.totals`` gathers them all once the backend is closed.
    """

    sent: int = 0
    batches: int = 0
    dropped: Counter[DropReason] = field(default_factory=Counter)
    waited_s: float = 0.0
    viewer_dropped: Counter[DropReason] = field(default_factory=Counter)
    #: images left out by a filter - the viewer's (announced in the handshake) or the
    #: config's ``show`` - before anything was copied: not sent, and not dropped either
    filtered: int = 0

    @property
    def shortfall(self) -> int:
        """Images not delivered for want of time or a viewer (superseded ones excluded)."""
        return sum(n for reason, n in self.dropped.items() if reason is not DropReason.SUPERSEDED)

    def add(self, other: SaveReport) -> None:
        self.sent += other.sent
        self.batches += other.batches
        self.dropped.update(other.dropped)
        self.waited_s += other.waited_s
        self.viewer_dropped.update(other.viewer_dropped)
        self.filtered += other.filtered


@dataclass
class _Outgoing:
    """One ``deliver`` call's batch in the making; owned by that call."""

    display: Mapping[str, Any]
    mode: DeliveryMode
    deadline: float
    saved_at: float = field(default_factory=time.time)
    report: SaveReport = field(default_factory=SaveReport)
    session: int = -1
    seq: int = 0
    items: list[WireItem] = field(default_factory=list)
    frames: list[memoryview] = field(default_factory=list)
    inline_bytes: int = 0

    @property
    def live(self) -> bool:
        return self.mode is DeliveryMode.LIVE


class _LinkPools:
    """A link's shared-memory pools; ``active`` is the one the current session uses.

    Called by the link's supervisor (``attach``, ``detach``) and by deliveries under the
    link's send_lock (``active``, ``collect_retired``); it knows nothing of the link.
    """

    def __init__(self, want_shm: bool, pool_bytes: int, options: LinkOptions, where: str) -> None:
        self.pool_bytes = pool_bytes
        self.slots = options.pool_slots
        self.rpc_timeout_s = options.rpc_timeout_s
        self.where = where  # host:port, for messages
        if options.pool_kind is not None:
            self.kinds = [options.pool_kind]
        else:
            self.kinds = [PoolKind.MEMFD, PoolKind.NAMED] if HAS_MEMFD else [PoolKind.NAMED]
        self.create_failed = not want_shm  # inline for good
        self.key = secrets.token_hex(16)  # proves to the viewer that a detach is ours
        self.active: SlotPool | None = None
        self._pools: dict[PoolKind, SlotPool] = {}
        self._retired: list[SlotPool] = []
        self._lock = threading.Lock()

    def attach(self, control: ControlClient, producer: str, viewer_id: str) -> bool:
        """Get a pool mapped by the viewer; False only if the viewer stopped answering."""
        self.active = None
        if self.create_failed:
            return True
        for kind in self.kinds:
            pool = self._pool(kind)
            if pool is None:
                continue
            try:
                reply = control.request(
                    Attach(
                        producer=producer,
                        pid=os.getpid(),
                        pool=pool.segment.info(),
                        key=self.key,
                    ),
                    self.rpc_timeout_s,
                )
            except (ControlTimeout, ValueError):  # ValueError: WireError, a garbled reply
                return False
            finally:
                self._after_attach(kind, pool)
            if isinstance(reply.message, Attached):
                self.active = pool
                return True
            log.info("viewer %s did not map %s pool: %s", viewer_id, kind.value, reply.message)
        if not self.create_failed:
            log.info("viewer %s: no shared memory this session; sending pixels inline", viewer_id)
        return True

    def _pool(self, kind: PoolKind) -> SlotPool | None:
        with self._lock:
            if kind in self._pools:
                return self._pools[kind]
        try:
            pool = SlotPool(self.pool_bytes, kind, self.slots)
        except (SegmentError, OSError, ValueError) as err:
            if kind is self.kinds[-1]:
                self.create_failed = True
                log.warning(
                    "cannot create a %d MiB shared-memory pool (%s); streaming to %s with "
                    "inline frames instead",
                    self.pool_bytes >> 20,
                    err,
                    self.where,
                )
            return None
        with self._lock:
            self._pools[kind] = pool
        return pool

    def _after_attach(self, kind: PoolKind, pool: SlotPool) -> None:
        if kind is not PoolKind.NAMED:
            return  # a memfd has no name; it can be attached again by the next viewer
        pool.segment.unlink()  # mapped by the viewer now, or never: the name goes either way
        with self._lock:
            # Unnamed, it cannot be attached again: the next session gets a fresh one.
            self._pools.pop(kind, None)
            self._retired.append(pool)

    def collect_retired(self) -> None:
        """Close pools no session uses any more (call under the link's send_lock)."""
        with self._lock:
            retired = [p for p in self._retired if p is not self.active]
            self._retired = [p for p in self._retired if p is self.active]
        for pool in retired:
            pool.close()

    def detach(self, control: ControlClient, producer: str) -> None:
        # A viewer that does not answer notices our exit on its own (pidfd).
        with contextlib.suppress(ControlTimeout, ValueError):
            control.request(Detach(producer=producer, key=self.key), min(self.rpc_timeout_s, 0.5))

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values()) + self._retired
            self._pools.clear()
            self._retired.clear()
        self.active = None
        for pool in pools:
            pool.close()


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
        self.show: Mapping[str, tuple[str, ...]] = {}  # the viewer's filter (its pong)
        self.session = 0  # bumped on every successful handshake
        self.acked_seq = 0
        self.next_seq = 1
        self.viewer_dropped: dict[str, int] = {}  # the viewer's drops of our images, by reason
        # The shared-memory bytes the viewer wants in flight at most (0: any). Until its
        # first acknowledgement says, a modest start: eight producers starting at once
        # must not each carve a whole pool before the viewer shared its window out.
        self.window = WINDOW_START
        # Batches sent and not yet confirmed, (seq, images), under cond: if the viewer is
        # replaced before confirming them, their images are counted viewer_lost.
        self._unconfirmed: deque[tuple[int, int]] = deque()
        self._lost_images = 0
        self._dropped_reported: dict[str, int] = {}  # the viewer's drops already reported
        self._dropped_viewer = ""
        self._viewer_gone = False  # lossless: a whole budget passed without a viewer
        # Inline batches not yet acknowledged, (seq, bytes); touched under send_lock.
        self.inline_in_flight: deque[tuple[int, int]] = deque()
        self._inline_viewer = ""
        self.recycler = BufferRecycler(pool_bytes)  # inline copies, at most a window's worth
        # The declared plate layout (see declare); under cond. It rides on batches until the
        # viewer it is meant for acknowledged one carrying it (then: _layout_told).
        self._layout: dict[str, tuple[int | str, ...]] = {}
        self._layout_sent: tuple[str, int] | None = None  # (viewer, first seq carrying it)
        self._layout_told = ""  # the viewer that has it
        self._closing = False
        self._pub_lock = threading.Lock()
        self._pub = self._open_pub(context, curve)
        self._monitor = self._pub.get_monitor_socket(MONITORED)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._control = ControlClient(
            context, control_endpoint(host, port), curve=curve, timeout_s=self.options.rpc_timeout_s
        )
        self.pools = _LinkPools(shm, pool_bytes, self.options, f"{host}:{port}")
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

    def settle(self, timeout_s: float) -> bool:
        """Wait until the viewer confirmed everything sent, through reconnects to the same
        viewer (a stall), within ``timeout_s``; at once if a budget already passed without a
        viewer. True if nothing sent is unconfirmed."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            return (
                self.cond.wait_for(
                    lambda: (
                        self.acked_seq >= self.next_seq - 1
                        or self._viewer_gone
                        or self.state is LinkState.CLOSED
                    ),
                    max(0.0, deadline - time.monotonic()),
                )
                and self.acked_seq >= self.next_seq - 1
            )

    def close(self) -> bool:
        """Let the viewer finish (bounded), say goodbye, close sockets and the pool.

        Images of batches no viewer confirmed by then are counted viewer_lost (``take_lost``).
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
            # What no viewer confirmed by now, the producer cannot know was shown: lost.
            self._lost_images += sum(n for seq, n in self._unconfirmed if seq > self.acked_seq)
            self._unconfirmed.clear()
            self.cond.notify_all()
        with self._pub_lock:
            self._pub.close(linger=0)
        with self.send_lock:
            self.pools.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        return not self._thread.is_alive()

    # ------------------------------------------------------------ delivery

    def declare(self, layout: dict[str, tuple[int | str, ...]]) -> None:
        """Tell the viewer the plate's layout (see ``Batch.layout``) with the next batches,
        and tell a viewer that replaces this one too."""
        with self.cond:
            self._layout = dict(layout)
            self._layout_sent, self._layout_told = None, ""

    def _layout_for(self, seq: int) -> dict[str, tuple[int | str, ...]]:
        """The layout to send with batch ``seq``: until a batch carrying it is acknowledged
        by the viewer now on the other end (a restarted viewer is told again)."""
        with self.cond:
            if not self._layout or self._layout_told == self.viewer_id:
                return {}
            sent = self._layout_sent
            if sent is not None and sent[0] == self.viewer_id and self.acked_seq >= sent[1]:
                self._layout_told = self.viewer_id
                return {}
            if sent is None or sent[0] != self.viewer_id:
                self._layout_sent = (self.viewer_id, seq)
            return self._layout

    def deliver(
        self,
        images: Sequence[OutgoingImage],
        display: Mapping[str, Any],
        mode: DeliveryMode,
        budget_s: float,
    ) -> SaveReport:
        """Send ``images`` as one or more batches; waits only within budget (see above)."""
        live = mode is DeliveryMode.LIVE
        wait_s = self.options.live_wait_s if live else budget_s
        out = _Outgoing(display=display, mode=mode, deadline=time.monotonic() + wait_s)
        with self.send_lock:
            self.pools.collect_retired()
            lost = self._take_lost()
            if lost:  # sent earlier; the viewer that had them restarted or vanished
                out.report.dropped[DropReason.VIEWER_LOST] += lost
            out.report.viewer_dropped.update(self.take_viewer_dropped())
            for index, image in enumerate(images):
                terminal = self._place(out, image)
                if terminal is not None:
                    out.report.dropped[terminal] += len(images) - index
                    break
            self._flush(out)
        return out.report

    def _place(self, out: _Outgoing, image: OutgoingImage) -> DropReason | None:
        """Place one image (or count its drop); a returned reason drops all the rest too."""
        while True:
            if not self.up:
                self._flush(out)
                if out.live or self._viewer_gone:
                    # Lossless fails fast once a whole budget passed without a viewer: the
                    # next images do not each wait a budget for a viewer that is gone.
                    return DropReason.NO_VIEWER
                if not self._timed(out, self.wait_up, out.deadline):
                    with self.cond:
                        self._viewer_gone = not self.up
                    return DropReason.BUDGET
            with self.cond:
                session, acked, show = self.session, self.acked_seq, self.show
            item = image.item
            if show and not shows(show, item.lookup, item.step_index, item.step_name):
                out.report.filtered += 1  # the viewer does not show it: nothing is copied
                return None
            if session != out.session:
                self._new_session(out, session)
            pool = self.pools.active
            if self._try_place(out, image, pool, acked):
                return None
            self._flush(out)  # let the viewer acknowledge what is placed before waiting
            if not self._timed(out, self.wait_for_acks, acked, session, out.deadline):
                full = DropReason.POOL_FULL if pool is not None else DropReason.WINDOW_FULL
                if self._try_place(out, image, pool, acked):  # one last look after the budget
                    return None
                out.report.dropped[full if out.live else DropReason.BUDGET] += 1
                return None

    def _timed(self, out: _Outgoing, wait: Callable[..., bool], *args: Any) -> bool:
        """Call one of the link's waits, adding the time spent to the report."""
        started = time.monotonic()
        try:
            return wait(*args)
        finally:
            out.report.waited_s += time.monotonic() - started

    def _new_session(self, out: _Outgoing, session: int) -> None:
        self._flush(out)
        out.session = session
        with self.cond:
            viewer = self.viewer_id
        if self._inline_viewer != viewer:
            # Another viewer will never acknowledge the batches sent to the last one: forget
            # their bytes. (The same viewer, reconnected, still does.)
            self.inline_in_flight.clear()
            self._inline_viewer = viewer

    def take_viewer_dropped(self) -> Counter[DropReason]:
        """What the viewer reported dropping of our images since the last call."""
        with self.cond:
            current, viewer = dict(self.viewer_dropped), self.viewer_id
        if viewer != self._dropped_viewer:  # another viewer counts from zero
            self._dropped_viewer, self._dropped_reported = viewer, {}
        news: Counter[DropReason] = Counter()
        for reason, count in current.items():
            delta = count - self._dropped_reported.get(reason, 0)
            if delta > 0 and reason in _REASONS:
                news[DropReason(reason)] += delta
        self._dropped_reported = current
        return news

    def take_lost(self) -> int:
        """Images counted viewer_lost since the last call (each is reported once)."""
        return self._take_lost()

    def _take_lost(self) -> int:
        with self.cond:
            lost, self._lost_images = self._lost_images, 0
        return lost

    def _try_place(
        self, out: _Outgoing, image: OutgoingImage, pool: SlotPool | None, acked: int
    ) -> bool:
        if len(out.items) >= MAX_ITEMS_PER_MESSAGE:
            self._flush(out)
        unacked = self.next_seq - 1 - acked
        if out.seq == 0 and unacked >= self.options.max_in_flight:
            return False
        if pool is not None and image.array.nbytes <= pool.capacity:
            return self._place_in_pool(out, image, pool, acked)
        return self._place_inline(out, image, acked)

    def _place_in_pool(
        self, out: _Outgoing, image: OutgoingImage, pool: SlotPool, acked: int
    ) -> bool:
        current = out.seq or self.next_seq
        carve = not self.window or pool.bytes_in_flight(acked) + image.array.nbytes <= self.window
        slot = pool.acquire(
            image.array.nbytes, image.plane, current, out.live, released=acked, carve=carve
        )
        if slot is None:
            return False
        if slot.seq > acked:  # a pending image of this plane is replaced: newest wins
            out.report.dropped[DropReason.SUPERSEDED] += 1
        pixels = pool.write(slot, image.array, self._reserve(out), image.plane)
        out.items.append(_wire_item(image, pixels))
        return True

    def _place_inline(self, out: _Outgoing, image: OutgoingImage, acked: int) -> bool:
        in_flight = self.inline_in_flight
        while in_flight and in_flight[0][0] <= acked:
            in_flight.popleft()
        pending = sum(n for _, n in in_flight) + out.inline_bytes
        nbytes = image.array.nbytes
        if pending and pending + nbytes > self.pool_bytes:
            return False
        self._reserve(out)
        # A private C-ordered copy: the caller may reuse its array as soon as we return.
        # Into a recycled buffer: ZeroMQ holds it until sent, then it is free again.
        private = self.recycler.empty(image.array.shape, image.array.dtype)
        np.copyto(private, image.array, casting="no")
        out.frames.append(private.reshape(-1).view(np.uint8).data)
        out.inline_bytes += nbytes
        out.items.append(_wire_item(image, InlinePixels(frame=len(out.frames), nbytes=nbytes)))
        return True

    def _reserve(self, out: _Outgoing) -> int:
        if out.seq == 0:
            out.seq = self.reserve_seq()
        return out.seq

    def _flush(self, out: _Outgoing) -> None:
        if not out.items:
            return
        batch = Batch(
            producer=self.producer_id,
            seq=out.seq,
            saved_at=out.saved_at,
            sent_at=time.time(),
            delivery=out.mode,
            display=out.display,
            items=tuple(out.items),
            layout=self._layout_for(out.seq),
        )
        with self.cond:  # before publishing: its acknowledgement may come at once
            self._unconfirmed.append((out.seq, len(out.items)))
        self.publish([encode_message(batch), *out.frames])
        if out.inline_bytes:
            self.inline_in_flight.append((out.seq, out.inline_bytes))
        out.report.sent += len(out.items)
        out.report.batches += 1
        out.items, out.frames, out.inline_bytes, out.seq = [], [], 0, 0

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
        if not self.pools.attach(self._control, self.producer_id, reply.viewer_id):
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
            self.session += 1
            self._viewer_gone = False
            if pong.viewer_id != self.viewer_id:
                # A new viewer (or this one restarted): it maps nothing of ours, so every slot
                # is free, and it will confirm nothing sent before - those images are lost.
                self.viewer_dropped = {}
                self._lost_images += sum(n for seq, n in self._unconfirmed if seq > self.acked_seq)
                self._unconfirmed.clear()
                self.acked_seq = self.next_seq - 1
            # The same viewer again (it stalled, or the connection dropped): what it still
            # holds stays unacknowledged, so no slot on loan to it is written again.
            self.viewer_id = pong.viewer_id
            self.show = dict(pong.show)  # what it shows: nothing else is sent to it
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
            while self._unconfirmed and self._unconfirmed[0][0] <= self.acked_seq:
                self._unconfirmed.popleft()
            self.viewer_dropped = dict(reply.dropped)
            self.window = reply.window
            self.cond.notify_all()

    def _goodbye(self) -> None:
        if self.up:
            self.pools.detach(self._control, self.producer_id)


def _wire_item(image: OutgoingImage, pixels: Pixels) -> WireItem:
    item = image.item
    return WireItem(
        components=item.components,
        step_index=item.step_index,
        step_name=item.step_name,
        shape=tuple(image.array.shape),
        dtype=wire_dtype(image.array.dtype),
        kind=item.kind,
        extra=image.extra,
        pixels=pixels,
    )
