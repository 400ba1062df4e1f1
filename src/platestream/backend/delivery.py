"""One ``save_batch`` on one link: place pixels, publish batches, wait only within budget.

Live: the call never waits longer than ``live_wait_s`` in total. With no viewer, images are
dropped at once; with the pool full, a newer image of a plane takes over the slot of an
older one the viewer has not read yet, and otherwise the new image is dropped. Lossless:
the call waits for the viewer (handshake, free slots, inline window) until
``lossless_budget_s`` has passed, then reports what it could not deliver. Either way every
drop is counted by reason in the returned SaveReport.

Pixels go to a pool slot when the link has one attached and the image fits, else inline:
copied once into a private buffer (so the caller may reuse its array at once) and sent as
a zero-copy frame. A batch is published early whenever the next image must wait, so the
viewer can acknowledge what is already placed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from platestream.config import DeliveryMode
from platestream.layering import ImageItem
from platestream.schemas import (
    Batch,
    DropReason,
    InlinePixels,
    Pixels,
    WireItem,
    encode_message,
)

from .arrays import wire_dtype
from .link import Link
from .pool import SlotPool

MAX_ITEMS_PER_MESSAGE = 256


@dataclass(frozen=True)
class Prepared:
    """An image ready to send: its item (shape and dtype from the array) and host pixels."""

    item: ImageItem
    array: np.ndarray
    extra: Mapping[str, Any]  # item.extra as JSON values

    @cached_property
    def plane(self) -> Hashable:
        """Images with the same plane key show in the same place: newest wins in live mode."""
        item = self.item
        return (item.kind, item.step_index, item.step_name, tuple(sorted(item.components.items())))


@dataclass
class SaveReport:
    """What one save/save_batch did: images sent, batches published, drops by reason."""

    sent: int = 0
    batches: int = 0
    dropped: Counter[DropReason] = field(default_factory=Counter)
    waited_s: float = 0.0

    @property
    def shortfall(self) -> int:
        """Images not delivered for want of time or a viewer (superseded ones excluded)."""
        return sum(n for reason, n in self.dropped.items() if reason is not DropReason.SUPERSEDED)

    def add(self, other: SaveReport) -> None:
        self.sent += other.sent
        self.batches += other.batches
        self.dropped.update(other.dropped)
        self.waited_s += other.waited_s


class Delivery:
    """Sends one batch of prepared images over ``link``. Use once."""

    def __init__(
        self, link: Link, display: Mapping[str, Any], mode: DeliveryMode, budget_s: float
    ) -> None:
        self.link = link
        self.display = display
        self.live = mode is DeliveryMode.LIVE
        self.mode = mode
        self.saved_at = time.time()
        self.started = time.monotonic()
        self.deadline = self.started + (link.options.live_wait_s if self.live else budget_s)
        self.report = SaveReport()
        self.session = -1
        self._seq = 0
        self._items: list[WireItem] = []
        self._frames: list[memoryview] = []
        self._inline_bytes = 0

    def run(self, images: Sequence[Prepared]) -> SaveReport:
        with self.link.send_lock:
            self.link.attacher.collect_retired()
            for index, image in enumerate(images):
                terminal = self._place(image)
                if terminal is not None:
                    self.report.dropped[terminal] += len(images) - index
                    break
            self._flush()
        return self.report

    # ---------------------------------------------------------------- placing

    def _place(self, image: Prepared) -> DropReason | None:
        """Place one image (or count its drop); a returned reason drops all the rest too."""
        while True:
            if not self.link.up:
                self._flush()
                if self.live or not self._wait(self.link.wait_up, self.deadline):
                    return DropReason.NO_VIEWER if self.live else DropReason.BUDGET
            with self.link.cond:
                session, acked = self.link.session, self.link.acked_seq
            if session != self.session:
                self._new_session(session)
            pool = self.link.attacher.active
            if pool is not None:
                pool.acked_seq = acked
            if self._try_place(image, pool, acked):
                return None
            self._flush()  # let the viewer acknowledge what is placed before waiting
            if not self._wait(self.link.wait_for_acks, acked, session, self.deadline):
                full = DropReason.POOL_FULL if pool is not None else DropReason.WINDOW_FULL
                if self._try_place(image, pool, acked):  # one last look after the budget
                    return None
                self.report.dropped[full if self.live else DropReason.BUDGET] += 1
                return None

    def _wait(self, wait: Callable[..., bool], *args: Any) -> bool:
        """Call a link's wait, adding the time spent to the report."""
        started = time.monotonic()
        try:
            return wait(*args)
        finally:
            self.report.waited_s += time.monotonic() - started

    def _new_session(self, session: int) -> None:
        self._flush()
        self.session = session
        if self.link.inline_session != session:
            # Batches of an earlier session will never be acknowledged: forget their bytes.
            self.link.inline_in_flight.clear()
            self.link.inline_session = session

    def _try_place(self, image: Prepared, pool: SlotPool | None, acked: int) -> bool:
        if len(self._items) >= MAX_ITEMS_PER_MESSAGE:
            self._flush()
        unacked = self.link.next_seq - 1 - acked
        if self._seq == 0 and unacked >= self.link.options.max_in_flight:
            return False
        if pool is not None and image.array.nbytes <= pool.capacity:
            return self._place_in_pool(image, pool)
        return self._place_inline(image, acked)

    def _place_in_pool(self, image: Prepared, pool: SlotPool) -> bool:
        current = self._seq or self.link.next_seq
        slot = pool.acquire(image.array.nbytes, image.plane, current, self.live)
        if slot is None:
            return False
        if slot.seq > pool.acked_seq:  # a pending image of this plane is replaced: newest wins
            self.report.dropped[DropReason.SUPERSEDED] += 1
        pixels = pool.write(slot, image.array, self._reserve(), image.plane)
        self._items.append(_wire_item(image, pixels))
        return True

    def _place_inline(self, image: Prepared, acked: int) -> bool:
        in_flight = self.link.inline_in_flight
        while in_flight and in_flight[0][0] <= acked:
            in_flight.popleft()
        pending = sum(n for _, n in in_flight) + self._inline_bytes
        nbytes = image.array.nbytes
        if pending and pending + nbytes > self.link.pool_bytes:
            return False
        self._reserve()
        # A private C-ordered copy: the caller may reuse its array as soon as we return.
        # Into a recycled buffer: ZeroMQ holds it until sent, then it is free again.
        private = self.link.recycler.empty(image.array.shape, image.array.dtype)
        np.copyto(private, image.array, casting="no")
        self._frames.append(private.reshape(-1).view(np.uint8).data)
        self._inline_bytes += nbytes
        self._items.append(_wire_item(image, InlinePixels(frame=len(self._frames), nbytes=nbytes)))
        return True

    def _reserve(self) -> int:
        if self._seq == 0:
            self._seq = self.link.reserve_seq()
        return self._seq

    def _flush(self) -> None:
        if not self._items:
            return
        batch = Batch(
            producer=self.link.producer_id,
            seq=self._seq,
            saved_at=self.saved_at,
            sent_at=time.time(),
            delivery=self.mode,
            display=self.display,
            items=tuple(self._items),
        )
        self.link.publish([encode_message(batch), *self._frames])
        if self._inline_bytes:
            self.link.inline_in_flight.append((self._seq, self._inline_bytes))
        self.report.sent += len(self._items)
        self.report.batches += 1
        self._items, self._frames, self._inline_bytes, self._seq = [], [], 0, 0


def _wire_item(image: Prepared, pixels: Pixels) -> WireItem:
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
