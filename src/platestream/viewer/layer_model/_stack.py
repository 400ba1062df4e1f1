"""A layer's pixels as planes by reference: what napari reads, plane by plane, on demand.

A layer of a plate is a stack of planes along its component axes (well, site, z...). Here
the layer holds, per stacked index, only a *reference* to its plane; the pixels live in a
``PlaneSource`` - RAM for ``store = "memory"``, the run store on disk behind a bounded
cache otherwise. So:

* a new well, site or axis costs no pixel copy at all (an insert renumbers one axis);
* a new plane size or dtype costs nothing until a plane is read (reads pad, crop, cast);
* napari reads only the planes it shows: ``LevelView.__getitem__`` builds the requested
  slice from the planes it needs, and a request spanning many planes (napari's multiscale
  path slices the whole level first) returns a lazy view that reads on ``np.asarray``.

Each stacked axis keeps a list position -> stable id, and planes are keyed by ids, so an
insert in the middle of an axis renumbers positions without touching the planes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from platestream.layering import ImageItem

Array = np.ndarray[Any, Any]
Index = tuple[int, ...]
EAGER_PLANES = 256  # a request for more planes than this returns a lazy view
# Planes larger than this (either side) make multiscale layers. Smaller ones draw faster
# single-scale: napari's multiscale path costs about 5 ms per refresh of a 1024 px plane,
# and a 1024 px plane is a few texture tiles whichever level is drawn.
MULTISCALE_ABOVE = 2048


class PlaneSource(Protocol):
    """Where planes live. ``put`` takes ownership of ``plane`` and returns its reference."""

    def put(self, item: ImageItem, plane: Array) -> Hashable: ...

    def get(self, ref: Hashable, level: int = 0) -> Array | None: ...

    def retain(self, ref: Hashable) -> None: ...

    def release(self, ref: Hashable) -> None: ...

    @property
    def multiscale(self) -> bool: ...


@dataclass(frozen=True)
class StoredPlane:
    """Pixels given by reference (a reopened run's plane): the layer takes ``ref`` as is.
    ``shape`` and ``dtype`` describe it like an array's, so planning treats it as one."""

    ref: Hashable
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    contrast: tuple[float, float] | None = None  # the display window the run recorded

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class _Entry:
    ref: Hashable
    region: tuple[int, ...] | None = None  # a copied plane: only this corner is its own


def level_shape(plane_shape: tuple[int, ...], level: int) -> tuple[int, ...]:
    """A plane's shape at pyramid ``level`` (y and x halved per level, rounded up)."""
    if level == 0:
        return plane_shape
    y, x = plane_shape[-2:]
    for _ in range(level):
        y, x = (y + 1) // 2, (x + 1) // 2
    return (*plane_shape[:-2], y, x)


def level_count(plane_shape: tuple[int, ...], smallest: int = 256, most: int = 8) -> int:
    count, y, x = 1, *plane_shape[-2:]
    while max(y, x) > smallest and count < most:
        y, x = (y + 1) // 2, (x + 1) // 2
        count += 1
    return count


class LayerPlanes:
    """The planes of one image or labels layer: ``sizes`` (stacked) + ``plane_shape``."""

    def __init__(
        self,
        sizes: tuple[int, ...],
        plane_shape: tuple[int, ...],
        dtype: Any,
        source: PlaneSource,
    ) -> None:
        self._ids = itertools.count()
        self.axis_ids: list[list[int]] = [[next(self._ids) for _ in range(n)] for n in sizes]
        self.plane_shape = tuple(plane_shape)
        self.dtype = np.dtype(dtype)
        self.source = source
        self.entries: dict[Index, _Entry] = {}  # keyed by axis ids, not positions
        large = max(self.plane_shape[-2:]) > MULTISCALE_ABOVE
        self.levels = level_count(self.plane_shape) if source.multiscale and large else 1

    # ------------------------------------------------------------------ shape

    @property
    def sizes(self) -> list[int]:
        return [len(ids) for ids in self.axis_ids]

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.sizes, *self.plane_shape)

    def insert(self, axis: int, index: int) -> None:
        ids = self.axis_ids[axis]
        if not 0 <= index <= len(ids):
            raise IndexError(f"insert at {index} along an axis of {len(ids)}")
        ids.insert(index, next(self._ids))

    def add_axis(self, axis: int, size: int, existing_index: int) -> None:
        new = [next(self._ids) for _ in range(size)]
        self.axis_ids.insert(axis, new)
        kept = new[existing_index]
        self.entries = {(*k[:axis], kept, *k[axis:]): v for k, v in self.entries.items()}

    def resize(self, plane_shape: tuple[int, ...]) -> None:
        self.plane_shape = tuple(plane_shape)  # planes are padded or cropped when read

    def set_dtype(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)  # planes are cast when read

    # ----------------------------------------------------------------- planes

    def _key(self, index: Index) -> Index:
        return tuple(ids[i] for ids, i in zip(self.axis_ids, index, strict=True))

    def set(self, index: Index, ref: Hashable, region: tuple[int, ...] | None = None) -> None:
        self.source.retain(ref)
        old = self.entries.get(self._key(index))
        self.entries[self._key(index)] = _Entry(ref, region)
        if old is not None:
            self.source.release(old.ref)

    def entry(self, index: Index) -> _Entry | None:
        return self.entries.get(self._key(index))

    def clear(self, index: Index) -> None:
        old = self.entries.pop(self._key(index), None)
        if old is not None:
            self.source.release(old.ref)

    def clear_all(self) -> None:
        for entry in self.entries.values():
            self.source.release(entry.ref)
        self.entries.clear()

    def filled(self) -> Iterator[Index]:
        """The stacked indices that hold a plane."""
        positions = [{i: p for p, i in enumerate(ids)} for ids in self.axis_ids]
        for key in self.entries:
            yield tuple(pos[i] for pos, i in zip(positions, key, strict=True))

    def plane(self, index: Index, level: int = 0) -> Array:
        """The plane at ``index`` as the layer shows it (zeros where none arrived)."""
        shape = level_shape(self.plane_shape, level)
        entry = self.entries.get(self._key(index))
        data = None if entry is None else self.source.get(entry.ref, level)
        if data is None:
            return np.zeros(shape, self.dtype)
        if entry is not None and entry.region is not None:
            region = level_shape(entry.region, level)
            data = data[tuple(slice(0, n) for n in region)]
        if data.shape == shape:
            return data if data.dtype == self.dtype else data.astype(self.dtype)
        out = np.zeros(shape, self.dtype)
        common = tuple(slice(0, min(a, b)) for a, b in zip(data.shape, shape, strict=False))
        if data.ndim == len(shape):
            out[common] = data[common]
        return out

    def view(self, level: int = 0) -> LevelView:
        return LevelView(self, level)

    def napari_data(self) -> Any:
        """A view per level (a list: napari's multiscale) or the one view."""
        if self.levels > 1:
            return [self.view(level) for level in range(self.levels)]
        return self.view()

    def __array__(self, dtype: Any = None, copy: Any = None) -> Array:
        """Every plane (tests and small layers only)."""
        return np.asarray(self.view(), dtype=dtype)


class LevelView:
    """One pyramid level of a layer as an array napari can slice: shape, dtype, ndim,
    ``__getitem__`` (reads only the planes asked for) and ``__array__``."""

    def __init__(
        self,
        planes: LayerPlanes,
        level: int,
        selection: tuple[list[int] | int, ...] | None = None,
        plane_keys: tuple[tuple[Any, ...], ...] = (),
    ) -> None:
        self._planes = planes
        self._level = level
        # Per stacked axis: the positions selected (a list keeps the axis, an int drops it).
        self._selection = (
            selection if selection is not None else tuple(list(range(n)) for n in planes.sizes)
        )
        self._plane_keys = plane_keys  # applied in order to each plane read
        self.dtype = planes.dtype
        plane_shape = np.empty(level_shape(planes.plane_shape, level), dtype=bool)
        for key in plane_keys:
            plane_shape = plane_shape[key]
        self._plane_shape = plane_shape.shape
        stacked = tuple(len(s) for s in self._selection if isinstance(s, list))
        self.shape = (*stacked, *self._plane_shape)
        self.ndim = len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<LevelView level {self._level} {self.shape} {self.dtype}>"

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(key) + 1)
            key = (*key[:at], *fill, *key[at + 1 :])
        key = (*key, *(slice(None),) * (self.ndim - len(key)))
        if len(key) != self.ndim:
            raise IndexError(f"{len(key)} indices for an array of {self.ndim} dimensions")
        kept = [i for i, s in enumerate(self._selection) if isinstance(s, list)]
        selection: list[list[int] | int] = list(self._selection)
        for axis, k in zip(kept, key[: len(kept)], strict=True):
            positions = self._selection[axis]
            assert isinstance(positions, list)
            if isinstance(k, slice):
                selection[axis] = positions[k]
            else:
                selection[axis] = positions[_integer(k, len(positions))]
        plane_key = tuple(key[len(kept) :])
        if any(not isinstance(k, slice) and not _is_int(k) for k in plane_key):
            raise IndexError("only integers and slices index a platestream layer")
        plane_keys = self._plane_keys
        if any(k != slice(None) for k in plane_key):
            plane_keys = (*plane_keys, plane_key)
        view = LevelView(self._planes, self._level, tuple(selection), plane_keys)
        count = math.prod(len(s) for s in selection if isinstance(s, list))
        return view if count > EAGER_PLANES else np.asarray(view)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Array:
        out = np.zeros(self.shape, dtype=self.dtype)
        lists = [s if isinstance(s, list) else [s] for s in self._selection]
        kept = [isinstance(s, list) for s in self._selection]
        for combo in itertools.product(*(enumerate(s) for s in lists)):
            plane = self._planes.plane(tuple(p for _, p in combo), self._level)
            for key in self._plane_keys:
                plane = plane[key]
            at = tuple(i for (i, _), keep in zip(combo, kept, strict=True) if keep)
            out[at] = plane
        return out if dtype is None else out.astype(dtype)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _integer(value: Any, length: int) -> int:
    if not _is_int(value):
        raise IndexError(f"index {value!r}: only integers and slices")
    index = int(value)
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for an axis of {length}")
    return index % length
