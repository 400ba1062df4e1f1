"""The layer store: plan operations + pixels -> numpy arrays, and what napari must be told.

Qt-free and napari-free, so it is tested without a GUI. It mirrors the reference replay of
``tests/layering/layering_replay.py`` (the semantics of each operation are in
``platestream.layering._ops``) and records, per layer, the least napari has to do:

* ``created``  - the layer is new: add it once;
* ``reshaped`` - its array object changed (more wells, a new axis, a new plane shape or
  dtype; points and shapes after any change): assign ``layer.data`` once;
* ``written``  - planes changed in place: ``layer.refresh()``;
* ``relabeled`` - its axes changed: new axis labels;
* ``removed``  - a variable-size split moved its planes elsewhere.

Changes accumulate until ``take_changes()``, so many batches between two frames cost napari
one update per layer (the viewer's display-rate coalescing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from platestream.backend.shm import prefaulted_copy
from platestream.layering import (
    AddAxis,
    Axis,
    AxisValue,
    ClearLayer,
    ClearPlane,
    CopyPlane,
    CreateLayer,
    ImageItem,
    InsertIndex,
    LayerKind,
    Operation,
    RemoveLayer,
    ResizePlane,
    SetAxisLabels,
    SetDtype,
    WritePlane,
)

from ._overview import Overviews
from ._sources import MemoryPlanes
from ._stack import Array, LayerPlanes, PlaneSource, StoredPlane

log = logging.getLogger(__name__)

Index = tuple[int, ...]
PixelsOf = Callable[[ImageItem], Array | None]
IntactOf = Callable[[ImageItem], bool]  # False: the pixels changed while they were read
ARRAY_KINDS = frozenset({LayerKind.IMAGE, LayerKind.LABELS})
PLANE_LABELS = ("Y", "X")


@dataclass
class StoredLayer:
    """One napari layer's content. Images and labels: ``array``; points and shapes:
    ``planes`` (the payload at each index) and ``sizes`` (the stacked axes' lengths)."""

    name: str
    kind: LayerKind
    axes: tuple[Axis, ...]
    colormap: str | None
    components: Mapping[str, AxisValue]  # the sliced components' values (step, channel...)
    array: LayerPlanes | None = None
    planes: dict[Index, Array] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    contrast: tuple[float, float] | None = None  # from the first plane written

    @property
    def plane_ndim(self) -> int:
        return len(self.array.plane_shape) if self.array is not None else 2

    @property
    def axis_labels(self) -> tuple[str, ...]:
        """Slider labels of the stacked axes, then the plane's (``Z``, ``Y``, ``X``...)."""
        plane = PLANE_LABELS[-self.plane_ndim :] if self.plane_ndim <= 2 else ()
        if not plane:
            plane = tuple(f"Plane{i}" for i in range(self.plane_ndim - 2)) + PLANE_LABELS
        return (*(axis.label for axis in self.axes), *plane)

    @property
    def multiscale(self) -> bool:
        return self.array is not None and self.array.levels > 1

    def napari_data(self) -> Any:
        """What ``layer.data`` is: the planes' view (a list of views per pyramid level when
        multiscale), an (N, D) points array or a shape list."""
        if self.array is not None:
            return self.array.napari_data()
        ndim = len(self.axes) + 2
        entries = sorted(self.planes.items())
        if self.kind is LayerKind.POINTS:
            rows = [indexed(index, points) for index, points in entries]
            return np.concatenate(rows) if rows else np.zeros((0, ndim))
        return [indexed(index, polygon) for index, shapes in entries for polygon in shapes]


def indexed(index: Index, coords: Array) -> Array:
    """``(N, 2)`` plane coordinates with the layer index in front: ``(N, len(index) + 2)``."""
    prefix = np.broadcast_to(np.asarray(index, dtype=float), (coords.shape[0], len(index)))
    return np.hstack([prefix, coords.astype(float)])


def vector_payload(kind: LayerKind, data: Array) -> Array | None:
    """Points as ``(N, 2)``; shapes as ``(N, V, 2)`` polygons (a ``(V, 2)`` is one polygon).
    None for anything else: the planner gives points and shapes 2-D planes."""
    if data.ndim == 2 and data.shape[-1] == 2:
        return np.array(data, dtype=float) if kind is LayerKind.POINTS else data[None].astype(float)
    if kind is LayerKind.SHAPES and data.ndim == 3 and data.shape[-1] == 2:
        return np.array(data, dtype=float)
    return None


def estimate_contrast(plane: Array) -> tuple[float, float]:
    """Sensible first-show limits: the first plane's range (never a pass over a stack)."""
    finite = plane[np.isfinite(plane)] if plane.dtype.kind in "fc" else plane
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = float(np.min(finite)), float(np.max(finite))
    return (low, high) if high > low else (low, low + 1.0)


@dataclass
class Changes:
    """What napari must be told since the last ``take_changes()``."""

    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reshaped: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    written_at: dict[str, set[Index]] = field(default_factory=dict)  # the planes written
    relabeled: set[str] = field(default_factory=set)
    images: int = 0  # planes written

    def __bool__(self) -> bool:
        return bool(self.created or self.removed or self.reshaped or self.written or self.relabeled)


class LayerStore:
    """Applies plan operations in order; every layer is a ``StoredLayer`` by napari name."""

    def __init__(self, source: PlaneSource | None = None) -> None:
        self.source: PlaneSource = source if source is not None else MemoryPlanes()
        self.layers: dict[str, StoredLayer] = {}
        self._changes = Changes()
        self._intact: IntactOf | None = None
        self.torn: list[ImageItem] = []  # read while their slot was rewritten: not shown
        self.shown: list[ImageItem] = []  # written into a layer since take_shown()
        self.overviews: Overviews | None = None  # plate overviews fed with every image

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def apply(
        self,
        ops: Iterable[Operation],
        pixels: PixelsOf,
        rename: Mapping[str, str] | None = None,
        intact: IntactOf | None = None,
    ) -> None:
        """Apply ``ops``; ``pixels(item)`` gives a WritePlane's array (None: skip it);
        ``rename`` maps plan names to napari names (see ``plans``). ``intact(item)``, asked
        after an item's pixels were copied in, False if they were rewritten meanwhile (a
        zero-copy lease): that plane is blanked instead of showing a torn image."""
        names = rename or {}
        self._intact = intact
        shown, written = len(self.shown), self._changes.images
        try:
            for op in ops:
                handler = _HANDLERS[type(op)]
                handler(self, op, names, pixels)
        except BaseException:
            # Half applied: the caller resets these layers, so none of it counts as shown.
            del self.shown[shown:]
            self._changes.images = written
            raise
        finally:
            self._intact = None

    def take_torn(self) -> list[ImageItem]:
        torn, self.torn = self.torn, []
        return torn

    def take_shown(self) -> list[ImageItem]:
        """The items whose pixels went into a layer since the last call."""
        shown, self.shown = self.shown, []
        return shown

    def remove_layers(self, names: list[str]) -> None:
        """Drop these layers (a plan that failed half way starts again); napari is told."""
        for name in names:
            if name not in self.layers:
                continue
            removed = self.layers.pop(name)
            if removed.array is not None:
                removed.array.clear_all()
            if name in self._changes.created:  # created and removed between two frames
                self._changes.created.remove(name)
            else:
                self._changes.removed.append(name)
            for pending in (self._changes.reshaped, self._changes.written, self._changes.relabeled):
                pending.discard(name)

    def clear(self) -> list[str]:
        """Forget every layer; returns their names (for napari to remove)."""
        names = list(self.layers)
        for layer in self.layers.values():
            if layer.array is not None:
                layer.array.clear_all()
        self.layers.clear()
        self._changes = Changes()
        self.shown.clear()
        if self.overviews is not None:
            self.overviews.clear()
        return names

    # ----------------------------------------------------------------- handlers

    def _layer(self, names: Mapping[str, str], plan_name: str) -> StoredLayer:
        return self.layers[names.get(plan_name, plan_name)]

    def _create(self, op: CreateLayer, names: Mapping[str, str], _: PixelsOf) -> None:
        name = names.get(op.name, op.name)
        if name in self.layers:
            raise ValueError(f"layer {name} created twice")
        layer = StoredLayer(name, op.kind, op.axes, op.colormap, op.components)
        if op.kind in ARRAY_KINDS:
            assert op.plane_shape is not None and op.dtype is not None
            sizes = tuple(axis.size for axis in op.axes)
            layer.array = LayerPlanes(sizes, op.plane_shape, np.dtype(op.dtype), self.source)
        else:
            layer.sizes = [axis.size for axis in op.axes]
        self.layers[name] = layer
        self._changes.created.append(name)

    def _remove(self, op: RemoveLayer, names: Mapping[str, str], _: PixelsOf) -> None:
        name = names.get(op.layer, op.layer)
        if name not in self.layers:
            raise KeyError(f"layer {name} removed but never created")
        self.remove_layers([name])

    def _insert(self, op: InsertIndex, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        if layer.array is not None:
            layer.array.insert(op.axis, op.index)
        else:
            layer.sizes[op.axis] += 1
            layer.planes = {_shift(k, op.axis, op.index): v for k, v in layer.planes.items()}
        self._changes.reshaped.add(layer.name)

    def _add_axis(self, op: AddAxis, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        if layer.array is not None:
            layer.array.add_axis(op.axis, op.size, op.existing_index)
        else:
            layer.sizes.insert(op.axis, op.size)
            layer.planes = {
                (*k[: op.axis], op.existing_index, *k[op.axis :]): v
                for k, v in layer.planes.items()
            }
        self._changes.reshaped.add(layer.name)

    def _resize(self, op: ResizePlane, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        assert layer.array is not None
        layer.array.resize(op.plane_shape)  # planes are padded or cropped as they are read
        self._changes.reshaped.add(layer.name)

    def _set_dtype(self, op: SetDtype, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        assert layer.array is not None
        layer.array.set_dtype(op.dtype)  # planes are cast as they are read
        self._changes.reshaped.add(layer.name)

    def _set_labels(self, op: SetAxisLabels, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        layer.axes = op.axes
        self._changes.relabeled.add(layer.name)

    def _write(self, op: WritePlane, names: Mapping[str, str], pixels: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        data = pixels(op.item)
        if data is None:
            return
        if layer.array is None:
            payload = vector_payload(layer.kind, data)
            if payload is None:
                log.warning(
                    "%s: %s payload of shape %s skipped", layer.name, layer.kind, data.shape
                )
                return
            if self._torn(op.item):
                return
            layer.planes[op.index] = payload
            self._changes.reshaped.add(layer.name)
        elif isinstance(data, StoredPlane):  # a reopened run's plane: by reference
            layer.array.set(op.index, data.ref)
            if layer.contrast is None and layer.kind is LayerKind.IMAGE:
                layer.contrast = data.contrast
            self._written(layer.name, op.index)
        else:
            # The plane is copied out of the transport's buffer (a lease may be rewritten);
            # the copy belongs to the plane source from now on.
            plane: Array = prefaulted_copy(data)
            if self._torn(op.item):
                layer.array.clear(op.index)
                self._written(layer.name, op.index)
                return
            layer.array.set(op.index, self.source.put(op.item, plane))
            if self.overviews is not None:
                self.overviews.add(op.item, plane, layer.colormap)
            if layer.contrast is None and layer.kind is LayerKind.IMAGE:
                layer.contrast = estimate_contrast(plane)
            self._written(layer.name, op.index)
        self._changes.images += 1
        self.shown.append(op.item)

    def _written(self, name: str, index: Index) -> None:
        self._changes.written.add(name)
        self._changes.written_at.setdefault(name, set()).add(index)

    def _torn(self, item: ImageItem) -> bool:
        if self._intact is None or self._intact(item):
            return False
        self.torn.append(item)
        return True

    def _copy(self, op: CopyPlane, names: Mapping[str, str], _: PixelsOf) -> None:
        source, target = self._layer(names, op.source), self._layer(names, op.layer)
        if source.array is None or target.array is None:
            if op.source_index in source.planes:
                target.planes[op.index] = source.planes[op.source_index]
            self._changes.reshaped.add(target.name)
            return
        assert op.region is not None
        entry = source.array.entry(op.source_index)
        if entry is None:
            target.array.clear(op.index)
        else:
            target.array.set(op.index, entry.ref, tuple(op.region))
        if target.contrast is None:
            target.contrast = source.contrast
        self._written(target.name, op.index)

    def _clear_plane(self, op: ClearPlane, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        if layer.array is None:
            layer.planes.pop(op.index, None)
            self._changes.reshaped.add(layer.name)
        else:
            layer.array.clear(op.index)
            self._written(layer.name, op.index)

    def _clear_layer(self, op: ClearLayer, names: Mapping[str, str], _: PixelsOf) -> None:
        layer = self._layer(names, op.layer)
        if layer.array is None:
            layer.planes.clear()
            self._changes.reshaped.add(layer.name)
        else:
            layer.array.clear_all()
            self._changes.written.add(layer.name)


def _shift(index: Index, axis: int, at: int) -> Index:
    return tuple(i + 1 if a == axis and i >= at else i for a, i in enumerate(index))


_HANDLERS: dict[type, Callable[[LayerStore, Any, Mapping[str, str], PixelsOf], None]] = {
    CreateLayer: LayerStore._create,
    RemoveLayer: LayerStore._remove,
    InsertIndex: LayerStore._insert,
    AddAxis: LayerStore._add_axis,
    ResizePlane: LayerStore._resize,
    SetDtype: LayerStore._set_dtype,
    SetAxisLabels: LayerStore._set_labels,
    WritePlane: LayerStore._write,
    CopyPlane: LayerStore._copy,
    ClearPlane: LayerStore._clear_plane,
    ClearLayer: LayerStore._clear_layer,
}
