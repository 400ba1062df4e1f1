"""What the receiver hands to the display: received batches, in a bounded queue.

Bounded by batches and by bytes. Live batches coalesce: a newly queued image replaces any
queued live image of the same plane (newest wins), and when the queue is over its bounds
the oldest live batches go first. Lossless batches are never dropped here; instead the
receiver stops reading while ``blocked()`` - the producers then wait for acknowledgements
- so the queue exceeds its bounds by at most one batch. Images dropped or cleared here
give their leased slots back at once (zero-copy receivers).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from platestream.config import DeliveryMode
from platestream.layering import ImageItem, plane_key
from platestream.schemas import DropReason

from .shm import SlotLease


@dataclass(frozen=True)
class ReceivedImage:
    """One image: its pixels copied out of shared memory (or an inline frame's buffer), or
    with a zero-copy receiver a read-only view of the producer's slot and its ``lease``."""

    item: ImageItem
    data: np.ndarray
    lease: SlotLease | None = None

    def intact(self) -> bool:
        """False if a leased slot was rewritten since arrival: discard what was read."""
        return self.lease is None or self.lease.intact()

    def release(self) -> None:
        """Give a leased slot back to its producer (no-op for copied pixels)."""
        if self.lease is not None:
            self.lease.release()

    @property
    def plane(self) -> Hashable:
        return plane_key(self.item)


@dataclass(frozen=True)
class ReceivedBatch:
    """A batch as the display gets it. ``display`` is the producer's resolved config."""

    producer: str
    seq: int
    delivery: DeliveryMode
    display: Any  # the producer's resolved NapariStreamingConfig
    images: tuple[ReceivedImage, ...]
    saved_at: float  # producer clock
    sent_at: float  # producer clock
    received_at: float  # receiver clock (time.time())

    @property
    def nbytes(self) -> int:
        return sum(image.data.nbytes for image in self.images)

    @property
    def live(self) -> bool:
        return self.delivery is DeliveryMode.LIVE

    def release(self) -> None:
        """Release every leased image (see ``ReceivedImage.release``)."""
        for image in self.images:
            image.release()

    def __enter__(self) -> ReceivedBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


DropCallback = Callable[[str, DropReason, int], None]  # producer, reason, images


class DisplayQueue:
    """Thread-safe; ``put`` from the receive thread, ``take`` from the display's thread."""

    def __init__(self, max_batches: int, max_bytes: int, on_drop: DropCallback) -> None:
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self._on_drop = on_drop
        self._batches: deque[ReceivedBatch] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _full(self) -> bool:
        return len(self._batches) >= self.max_batches or self._bytes >= self.max_bytes

    def blocked(self) -> bool:
        """Full, and nothing in it may be dropped: stop reading until the display takes."""
        with self._lock:
            return self._blocked()

    def _blocked(self) -> bool:
        return self._full() and not any(b.live for b in self._batches)

    def put(self, batch: ReceivedBatch) -> bool:
        """Queue ``batch``; False if it was dropped whole (a live batch, no room)."""
        with self._lock:
            if batch.live:
                self._supersede(batch)
            while self._full() and self._evict_oldest_live():
                pass
            if batch.live and self._full():
                self._on_drop(batch.producer, DropReason.QUEUE_FULL, len(batch.images))
                batch.release()
                return False
            self._batches.append(batch)
            self._bytes += batch.nbytes
            return True

    def _supersede(self, newer: ReceivedBatch) -> None:
        planes = {image.plane for image in newer.images}
        kept: deque[ReceivedBatch] = deque()
        for queued in self._batches:
            if not queued.live:
                kept.append(queued)
                continue
            survivors = tuple(i for i in queued.images if i.plane not in planes)
            for image in queued.images:
                if image.plane in planes:
                    image.release()
            if len(survivors) != len(queued.images):
                self._on_drop(
                    queued.producer, DropReason.SUPERSEDED, len(queued.images) - len(survivors)
                )
                self._bytes -= queued.nbytes
                if survivors:
                    queued = dataclasses.replace(queued, images=survivors)
                    self._bytes += queued.nbytes
                else:
                    continue
            kept.append(queued)
        self._batches = kept

    def _evict_oldest_live(self) -> bool:
        for index, queued in enumerate(self._batches):
            if queued.live:
                del self._batches[index]
                self._bytes -= queued.nbytes
                self._on_drop(queued.producer, DropReason.QUEUE_FULL, len(queued.images))
                queued.release()
                return True
        return False

    def head_bytes(self) -> int:
        """Bytes of the oldest queued batch (0: the queue is empty)."""
        with self._lock:
            return self._batches[0].nbytes if self._batches else 0

    def take(
        self, max_batches: int | None = None, max_bytes: int | None = None
    ) -> list[ReceivedBatch]:
        """Everything queued (or the oldest ``max_batches``; or the oldest batches within
        ``max_bytes``, at least one), oldest first."""
        return self.take_unblocking(max_batches, max_bytes)[0]

    def take_unblocking(
        self, max_batches: int | None = None, max_bytes: int | None = None
    ) -> tuple[list[ReceivedBatch], bool]:
        """``take``, and whether reading was paused (``blocked``) until this take."""
        with self._lock:
            was_blocked = self._blocked()
            count = (
                len(self._batches) if max_batches is None else min(max_batches, len(self._batches))
            )
            if max_bytes is not None:
                total, fits = 0, 0
                for batch in itertools.islice(self._batches, count):
                    total += batch.nbytes
                    if fits and total > max_bytes:
                        break
                    fits += 1
                count = fits
            taken = [self._batches.popleft() for _ in range(count)]
            self._bytes -= sum(b.nbytes for b in taken)
            return taken, was_blocked and bool(taken)

    def clear(self) -> int:
        """Empty the queue (a ``clear`` request); its images are counted ``cleared``."""
        with self._lock:
            batches = list(self._batches)
            self._batches.clear()
            self._bytes = 0
        for batch in batches:
            batch.release()
            self._on_drop(batch.producer, DropReason.CLEARED, len(batch.images))
        return len(batches)
