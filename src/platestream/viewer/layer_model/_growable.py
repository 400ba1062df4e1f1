"""An n-d array that grows along its leading (stacked) axes without copying everything each time.

A plate streams in well by well, so a layer's well axis grows one value at a time. Growing
a numpy array by ``np.insert`` copies the whole layer on every new value - quadratic in the
plate size. Here each stacked axis has spare capacity (doubled when full, like a list) and
the layer's data is a view of the filled part: an insert at the end costs nothing but the
new zero slab, an insert in the middle moves only the slabs after it. Spare capacity is
zeroed memory the kernel maps lazily, so it costs no resident memory until written.

The outermost axis - the wells of a plate, usually - grows the most, and growing it meant
copying the whole layer into a buffer twice as large (and faulting in that memory) again
and again as a plate streamed in. On Linux it instead reserves room for thousands of
slabs at once: address space only (``MAP_NORESERVE``), so the same layer keeps growing
in place and is never copied for a new well; memory is used only for what is written.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import sys
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

# Address space (not memory) a layer may reserve for its outermost axis, and the most
# slabs that reservation holds: 2,048 wells x 4 sites of 2048 x 2048 uint16 fit in 64 GiB.
RESERVE_BYTES = 64 << 30
RESERVE_SLABS = 1 << 14
_MAP_NORESERVE = 0x4000  # Linux; Python's mmap module exports it only from 3.13


def reserve(shape: tuple[int, ...], dtype: Any) -> Array | None:
    """A zeroed array whose pages are mapped only when first written, reserved without
    committing memory (Linux: a private ``MAP_NORESERVE`` mapping; small ones come from
    ``np.zeros``). None where that is not possible: the caller asks for less."""
    count = math.prod(shape)
    if count * np.dtype(dtype).itemsize < 64 << 20:
        return np.zeros(shape, dtype=dtype)
    if not sys.platform.startswith("linux"):
        return None
    try:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        mapping = mmap.mmap(-1, count * np.dtype(dtype).itemsize, flags=flags)
    except (OSError, OverflowError):  # a strict overcommit policy or an address-space limit
        return None
    with contextlib.suppress(OSError, AttributeError):  # a kernel without huge pages
        mapping.madvise(mmap.MADV_HUGEPAGE)  # fewer, larger page faults as it fills
    # The array holds a buffer export of the mapping: unmapped when the last view goes.
    return np.frombuffer(mapping, dtype=dtype, count=count).reshape(shape)


class GrowableArray:
    """``view`` has shape ``sizes + plane_shape``; ``sizes`` change with ``insert``."""

    def __init__(self, sizes: tuple[int, ...], plane_shape: tuple[int, ...], dtype: Any) -> None:
        self.sizes = list(sizes)
        self.plane_shape = tuple(plane_shape)
        self.buffer: Array = np.zeros((*sizes, *plane_shape), dtype=dtype)
        self._view: Array = self.buffer

    @property
    def view(self) -> Array:
        """The filled part: what the napari layer shows. A new object after each insert."""
        return self._view

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = self.buffer.dtype
        return dtype

    def _refresh_view(self) -> None:
        if list(self.buffer.shape[: len(self.sizes)]) == self.sizes:
            self._view = self.buffer
        else:
            self._view = self.buffer[tuple(slice(0, n) for n in self.sizes)]

    def _grow(self, axis: int) -> None:
        """Room for more slabs along ``axis``. The outer axis may hold a reservation of many
        slabs (address space only); growing an inner axis keeps such a reservation as address
        space too, or else sizes the outer axis to what is filled - never a real allocation
        of the reserved capacity (which would ask for tens of GiB)."""
        capacity = list(self.buffer.shape)
        capacity[axis] = max(2 * capacity[axis], 1)
        if axis != 0:
            capacity[0] = max(self.sizes[0], 1)  # what is filled; the reservation is redone
        slab = math.prod(capacity[1:]) * self.buffer.dtype.itemsize
        room = min(RESERVE_SLABS, RESERVE_BYTES // max(slab, 1))
        bigger: Array | None = None
        if room > capacity[0]:  # room for many slabs at once: grown once, not at each doubling
            bigger = reserve((room, *capacity[1:]), self.buffer.dtype)
        if bigger is None:
            bigger = np.zeros(capacity, dtype=self.buffer.dtype)
        filled = tuple(slice(0, n) for n in self.sizes)
        bigger[filled] = self.buffer[filled]
        self.buffer = bigger

    def insert(self, axis: int, index: int) -> None:
        """A zero slab at ``index`` along ``axis``; what was at and after it moves up one."""
        count = self.sizes[axis]
        if not 0 <= index <= count:
            raise IndexError(f"insert at {index} along an axis of {count}")
        if count == self.buffer.shape[axis]:
            self._grow(axis)
        self.sizes[axis] += 1
        self._refresh_view()
        if index < count:  # move the tail up; numpy copies overlapping slices correctly
            self._view[_along(axis, index + 1, count + 1)] = self._view[_along(axis, index, count)]
            self._view[_along(axis, index, index + 1)] = 0
        # Appended at the end, the slab was outside the filled part, which is never written:
        # it is still the buffer's zeros (and untouched pages cost nothing until drawn on).

    def replace(self, array: Array, plane_shape: tuple[int, ...]) -> None:
        """Take ``array`` as the whole content (a rebuilt layer: new axis, plane or dtype)."""
        self.plane_shape = tuple(plane_shape)
        self.sizes = list(array.shape[: array.ndim - len(self.plane_shape)])
        self.buffer = array
        self._view = array


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (*([slice(None)] * axis), slice(start, stop))
