"""The viewer's side of a producer's pool: validated, torn-read-proof copies out of it,
or read-only views of it lent to the display (see ``lease``)."""

from __future__ import annotations

import contextlib
import math
import mmap
import os

import numpy as np

from platestream.schemas import PoolInfo, PoolKind, ShmPixels

from ._copying import copy_into
from ._segment import (
    GENERATION,
    HEADER_BYTES,
    MAGIC,
    NBYTES,
    OFFSET,
    SLOT_WORDS,
    Layout,
    SegmentError,
    open_named,
    open_readonly,
)


class SlotError(ValueError):
    """The reference does not name a valid region of this pool."""


class Overwritten(RuntimeError):
    """The slot was rewritten before or while it was copied; the copy is discarded."""


class PoolReader:
    """A producer's pool as the viewer reads it, read-only (a viewer bug cannot corrupt it).

    A memfd pool (sealed: it cannot shrink) is mapped, and its slots can be lent as views.
    A named pool is read through its descriptor with ``pread`` (see ``open_named``): its
    owner could truncate it, and reading a mapping past the end would kill the viewer.
    """

    def __init__(self, info: PoolInfo, pid: int) -> None:
        self.info = info
        self.pid = pid
        self.layout = Layout(info.size, info.slots)
        if self.layout.data_bytes <= 0:
            raise SegmentError(0, f"pool {info.id}: {info.slots} slots leave no data area")
        self._buffer: mmap.mmap | None = None
        self._fd = -1
        self._table: np.ndarray | None = None
        if info.kind is PoolKind.NAMED:
            self._fd = open_named(info)
            header = self._pread_words(0, 2)
        else:
            self._buffer = open_readonly(info, pid)
            header = self.layout.header(self._buffer)
        valid = header is not None and int(header[0]) == MAGIC and int(header[1]) == info.size
        del header
        if not valid:
            self.close()
            raise SegmentError(0, f"pool {info.id}: bad header")
        if self._buffer is not None:
            self._table = self.layout.table(self._buffer)

    @property
    def lendable(self) -> bool:
        """True if slots can be lent as views (a mapped, sealed pool)."""
        return self._buffer is not None

    def _pread_words(self, offset: int, count: int) -> np.ndarray | None:
        """``count`` uint64 words at ``offset`` of a named pool; None if it was shrunk."""
        data = os.pread(self._fd, count * 8, offset)
        if len(data) != count * 8:
            return None
        return np.frombuffer(data, dtype="<u8")

    def _entry(self, slot: int) -> np.ndarray:
        if self._table is not None:
            row: np.ndarray = self._table[slot]
            return row
        if self._fd < 0:
            raise SlotError(f"pool {self.id} is closed")
        entry = self._pread_words(HEADER_BYTES + slot * SLOT_WORDS * 8, SLOT_WORDS)
        if entry is None:
            raise SlotError(f"pool {self.id} was shrunk by its owner")
        return entry

    @property
    def id(self) -> str:
        return self.info.id

    def _region(self, ref: ShmPixels) -> np.ndarray:
        if self._table is None and self._fd < 0:
            raise SlotError(f"pool {self.id} is closed")
        if ref.slot >= self.layout.slots:
            raise SlotError(f"slot {ref.slot} beyond the table of {self.layout.slots}")
        start, end = ref.offset, ref.offset + ref.nbytes
        if start < self.layout.data_start or end > self.layout.size:
            raise SlotError(f"bytes {start}..{end} outside the data area of pool {self.id}")
        return self._entry(ref.slot)

    def _checked(self, ref: ShmPixels, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The slot's table row, once ``ref`` is valid and still current."""
        entry = self._region(ref)
        if dtype.itemsize * math.prod(shape) != ref.nbytes:
            raise SlotError(f"shape {shape} of {dtype} is not {ref.nbytes} bytes")
        if not self._matches(entry, ref):
            raise Overwritten(f"slot {ref.slot} no longer holds generation {ref.generation}")
        return entry

    def copy_out(
        self,
        ref: ShmPixels,
        shape: tuple[int, ...],
        dtype: np.dtype,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """A private copy of the referenced pixels (into ``out`` if given, a C-ordered
        array of ``shape`` and ``dtype``); raises Overwritten for a torn read."""
        entry = self._checked(ref, shape, dtype)
        if out is None:
            out = np.empty(shape, dtype=dtype)
        if self._buffer is not None:
            source = np.ndarray(shape, dtype=dtype, buffer=self._buffer, offset=ref.offset)
            copy_into(out, source)
            del source
        elif not _pread_into(self._fd, out, ref.offset):
            raise SlotError(f"pool {self.id} was shrunk by its owner")
        else:
            entry = self._entry(ref.slot)  # read again after the copy, as the seqlock asks
        # Seqlock check: a producer that started rewriting during the copy changed it.
        if int(entry[GENERATION]) != ref.generation:
            raise Overwritten(f"slot {ref.slot} was rewritten during the copy")
        return out

    def view(
        self, ref: ShmPixels, shape: tuple[int, ...], dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        """A read-only view of the referenced pixels and the slot's table row, to check
        later that the slot was not rewritten; raises Overwritten if it already was."""
        buffer = self._buffer
        if buffer is None:
            raise SlotError(f"pool {self.id} cannot lend views; copy out of it")
        self._checked(ref, shape, dtype)
        # frombuffer holds a buffer export (np.ndarray(buffer=...) does not): the mapping
        # cannot be closed under these views, it outlives the reader until they are gone.
        count = ref.nbytes // dtype.itemsize  # checked above: the product of shape
        pixels = np.frombuffer(buffer, dtype=dtype, count=count, offset=ref.offset)
        row = HEADER_BYTES + ref.slot * SLOT_WORDS * 8
        entry = np.frombuffer(buffer, dtype="<u8", count=SLOT_WORDS, offset=row)
        return pixels.reshape(shape), entry

    def forget(self, ref: ShmPixels) -> None:
        """Unmap this process's pages of a slot it is done with (``MADV_DONTNEED``): the
        pixels stay in the producer's pool, but stop counting in this viewer's memory. A
        slot read again faults its pages back in. Without this, every page of every pool
        the viewer ever read stays in its RSS (up to ``shm_pool_mb`` per producer)."""
        buffer = self._buffer
        if buffer is None:
            return
        start = -(-ref.offset // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside it
        end = (ref.offset + ref.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > start:
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile: nothing to do
                buffer.madvise(mmap.MADV_DONTNEED, start, end - start)

    @staticmethod
    def _matches(entry: np.ndarray, ref: ShmPixels) -> bool:
        return (
            int(entry[GENERATION]) == ref.generation
            and int(entry[OFFSET]) == ref.offset
            and int(entry[NBYTES]) == ref.nbytes
        )

    def close(self) -> None:
        self._table = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._buffer is not None:
            # Views lent out may still use it: then it is unmapped when the last one goes.
            with contextlib.suppress(BufferError):
                self._buffer.close()
            self._buffer = None


def _pread_into(fd: int, out: np.ndarray, offset: int) -> bool:
    """Fill ``out`` (C-contiguous) from ``fd`` at ``offset``; False at a premature end."""
    view = memoryview(out.reshape(-1).view(np.uint8).data)
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            return False
        done += got
    return True
