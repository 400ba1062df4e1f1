"""An n-d array that grows along its leading (stacked) axes without copying everything each time.

A plate streams in well by well, so a layer's well axis grows one value at a time. Growing
a numpy array by ``np.insert`` copies the whole layer on every new value - quadratic in the
plate size. Here each stacked axis has spare capacity (doubled when full, like a list) and
the layer's data is a view of the filled part: an insert at the end costs nothing but the
new zero slab, an insert in the middle moves only the slabs after it. Spare capacity is
``np.zeros`` memory the kernel maps lazily, so it costs no resident memory until written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


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
        capacity = list(self.buffer.shape)
        capacity[axis] = max(2 * capacity[axis], 1)
        bigger: Array = np.zeros(capacity, dtype=self.buffer.dtype)
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

    def replace(self, array: Array, plane_shape: tuple[int, ...]) -> None:
        """Take ``array`` as the whole content (a rebuilt layer: new axis, plane or dtype)."""
        self.plane_shape = tuple(plane_shape)
        self.sizes = list(array.shape[: array.ndim - len(self.plane_shape)])
        self.buffer = array
        self._view = array


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (*([slice(None)] * axis), slice(start, stop))
