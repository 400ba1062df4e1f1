"""The producer's shared-memory pool: reused, pre-faulted slots carved on demand.

A slot's pages are reserved and faulted in when it is carved (see ``Segment.reserve``), so
the pool costs what the images in flight need. If memory runs out while carving, the pool
stops growing and keeps the slots it has; images that no longer fit go inline.

A slot is a page-aligned region with an entry in the slot table. Writing an image is a
seqlock write: the slot's generation becomes odd, the pixels are copied, then it becomes
the new even generation, which the batch message carries. The viewer compares that value
before and after its copy and drops the image if it changed.

A slot holding an image of batch ``seq`` is rewritten only once the viewer reported every
batch up to ``seq`` done (``released``, which the caller - the link, the one owner of
acknowledgements - passes in), except in live mode, where a newer image of the
same plane may replace one the viewer has not read yet (newest wins; the viewer sees the
generation change and drops the old one).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from platestream.schemas import PoolKind, ShmPixels

from ._copying import copy_into
from ._segment import GENERATION, NBYTES, OFFSET, PAGE, SEQ, Segment, SegmentError, round_up

log = logging.getLogger(__name__)
DEFAULT_SLOTS = 1024


@dataclass
class Slot:
    index: int
    offset: int
    capacity: int
    seq: int = 0  # the batch that last referenced it; 0 = never used
    plane: Hashable = None


class SlotPool:
    """Slots over one Segment. Not thread-safe: its Link serialises access."""

    def __init__(self, size: int, kind: PoolKind | None = None, slots: int = DEFAULT_SLOTS):
        self.segment = Segment(size, slots, kind)
        self.layout = self.segment.layout
        self._table = self.layout.table(self.segment.buffer)
        self._slots: list[Slot] = []
        self._carve_at = self.layout.data_start
        self._end = self.layout.size  # how far slots may be carved; lowered if memory runs out
        self._generation = 0

    @property
    def id(self) -> str:
        return self.segment.id

    @property
    def capacity(self) -> int:
        """The largest image a slot can ever hold."""
        return self._end - self.layout.data_start

    def in_flight(self, released: int) -> int:
        """Slots holding images of batches after ``released`` (not yet done by the viewer)."""
        return sum(1 for s in self._slots if s.seq > released)

    def acquire(
        self,
        nbytes: int,
        plane: Hashable,
        current_seq: int,
        live: bool,
        released: int = 0,
        carve: bool = True,
    ) -> Slot | None:
        """A slot for ``nbytes``, or None if none is free now. A slot is free once the viewer
        is done with every batch up to ``released``, and that of its image among them.

        Order: the best-fitting free slot; a newly carved one (unless ``carve`` is False and
        something is in flight: the viewer's window is full); a fresh layout when nothing
        is in flight; in live mode, the slot of a pending older image of the same plane.
        """
        fits = [s for s in self._slots if s.capacity >= nbytes and s.seq <= released]
        if fits:
            return min(fits, key=lambda s: s.capacity)
        carved = self._carve(nbytes) if carve or not self.in_flight(released) else None
        if carved is not None:
            return carved
        if all(s.seq <= released for s in self._slots):
            # Slots were cut for other sizes; nothing references them, so start over.
            self._slots.clear()
            self._carve_at = self.layout.data_start
            return self._carve(nbytes)
        if live:
            for slot in self._slots:
                if slot.plane == plane and slot.capacity >= nbytes and slot.seq < current_seq:
                    return slot
        return None

    def bytes_in_flight(self, released: int) -> int:
        """Bytes of slots holding images the viewer is not done with."""
        return sum(s.capacity for s in self._slots if s.seq > released)

    def _carve(self, nbytes: int) -> Slot | None:
        size = round_up(max(nbytes, 1), PAGE)
        if len(self._slots) >= self.layout.slots or self._carve_at + size > self._end:
            return None
        try:
            self.segment.reserve(self._carve_at + size)
        except SegmentError as err:
            self._end = self.segment.reserved  # keep what is reserved; larger images go inline
            log.warning(
                "shared-memory pool %s cannot grow past %d MiB (%s); images that do not fit "
                "go inline",
                self.id,
                (self._end - self.layout.data_start) >> 20,
                err,
            )
            return None
        slot = Slot(index=len(self._slots), offset=self._carve_at, capacity=size)
        self._slots.append(slot)
        self._carve_at += size
        return slot

    def write(self, slot: Slot, array: np.ndarray, seq: int, plane: Hashable) -> ShmPixels:
        """Copy ``array`` (any strides) into ``slot``; the returned reference goes on the wire."""
        self._generation += 2
        generation = self._generation
        entry = self._table[slot.index]
        # Odd while writing: a reader that copies now sees a change and drops the image.
        entry[GENERATION] = generation - 1
        target = np.ndarray(
            array.shape, dtype=array.dtype, buffer=self.segment.buffer, offset=slot.offset
        )
        copy_into(target, array)
        del target
        entry[OFFSET] = slot.offset
        entry[NBYTES] = array.nbytes
        entry[SEQ] = seq
        entry[GENERATION] = generation
        slot.seq, slot.plane = seq, plane
        return ShmPixels(
            pool=self.id,
            slot=slot.index,
            offset=slot.offset,
            nbytes=array.nbytes,
            generation=generation,
        )

    def close(self) -> None:
        del self._table
        self._slots.clear()
        self.segment.close()
