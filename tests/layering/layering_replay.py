"""A reference viewer for tests: applies plan operations to numpy arrays and dicts.

Every image's pixels are filled with its ``extra["id"]``, so after replaying a plan one can
read back which image each plane shows. The replay is strict: an operation on a missing
layer, an index out of range or an image that does not fit its plane fails the test. It is
what the napari viewer must do, without napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from platestream.layering import (
    AddAxis,
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

ARRAYS = (LayerKind.IMAGE, LayerKind.LABELS)


def item_id(item: ImageItem) -> int:
    return int(item.extra["id"])


@dataclass
class ReplayLayer:
    kind: LayerKind
    labels: tuple[str, ...]
    data: np.ndarray[Any, Any] | None = None  # images and labels
    points: dict[tuple[int, ...], int] = field(default_factory=dict)  # index -> item id
    sizes: list[int] = field(default_factory=list)  # axis sizes, for points and shapes

    @property
    def axis_sizes(self) -> tuple[int, ...]:
        if self.data is not None:
            return self.data.shape[: len(self.labels)]
        return tuple(self.sizes)

    def check_index(self, index: tuple[int, ...]) -> None:
        sizes = self.axis_sizes
        assert len(index) == len(sizes), (index, sizes)
        assert all(0 <= i < n for i, n in zip(index, sizes, strict=True)), (index, sizes)


class Replay:
    def __init__(self) -> None:
        self.layers: dict[str, ReplayLayer] = {}

    def apply(self, ops: tuple[Operation, ...] | list[Operation]) -> Replay:
        for op in ops:
            getattr(self, f"_{type(op).__name__}")(op)
        return self

    def _CreateLayer(self, op: CreateLayer) -> None:
        assert op.name not in self.layers, f"layer {op.name} created twice"
        layer = ReplayLayer(op.kind, op.axis_labels)
        if op.kind in ARRAYS:
            assert op.plane_shape is not None and op.dtype is not None
            layer.data = np.zeros(op.shape, dtype=op.dtype)
        else:
            assert op.plane_shape is None
            layer.sizes = [axis.size for axis in op.axes]
        self.layers[op.name] = layer

    def _RemoveLayer(self, op: RemoveLayer) -> None:
        del self.layers[op.layer]

    def _InsertIndex(self, op: InsertIndex) -> None:
        layer = self.layers[op.layer]
        assert 0 <= op.index <= layer.axis_sizes[op.axis]
        if layer.data is not None:
            layer.data = np.insert(layer.data, op.index, 0, axis=op.axis)
        else:
            layer.sizes[op.axis] += 1
            layer.points = {
                tuple(i + 1 if a == op.axis and i >= op.index else i for a, i in enumerate(k)): v
                for k, v in layer.points.items()
            }

    def _AddAxis(self, op: AddAxis) -> None:
        layer = self.layers[op.layer]
        assert 0 <= op.existing_index < op.size
        if layer.data is not None:
            old = np.expand_dims(layer.data, op.axis)
            shape = list(old.shape)
            shape[op.axis] = op.size
            data = np.zeros(shape, dtype=old.dtype)
            where = [slice(None)] * data.ndim
            where[op.axis] = slice(op.existing_index, op.existing_index + 1)
            data[tuple(where)] = old
            layer.data = data
        else:
            layer.sizes.insert(op.axis, op.size)
            layer.points = {
                (*k[: op.axis], op.existing_index, *k[op.axis :]): v
                for k, v in layer.points.items()
            }
        layer.labels = (*layer.labels[: op.axis], "?", *layer.labels[op.axis :])

    def _ResizePlane(self, op: ResizePlane) -> None:
        layer = self.layers[op.layer]
        assert layer.data is not None
        n = len(layer.labels)
        data = np.zeros(layer.data.shape[:n] + op.plane_shape, dtype=layer.data.dtype)
        common = tuple(
            slice(0, min(a, b)) for a, b in zip(layer.data.shape[n:], op.plane_shape, strict=True)
        )
        data[(Ellipsis, *common)] = layer.data[(Ellipsis, *common)]
        layer.data = data

    def _SetDtype(self, op: SetDtype) -> None:
        layer = self.layers[op.layer]
        assert layer.data is not None
        assert np.can_cast(layer.data.dtype, op.dtype), (layer.data.dtype, op.dtype)
        layer.data = layer.data.astype(op.dtype)

    def _SetAxisLabels(self, op: SetAxisLabels) -> None:
        layer = self.layers[op.layer]
        assert tuple(axis.size for axis in op.axes) == layer.axis_sizes
        layer.labels = op.axis_labels

    def _WritePlane(self, op: WritePlane) -> None:
        layer = self.layers[op.layer]
        layer.check_index(op.index)
        if layer.data is None:
            layer.points[op.index] = item_id(op.item)
            return
        plane = layer.data[op.index]
        assert np.can_cast(np.dtype(op.item.dtype), layer.data.dtype)
        fits = tuple(s + p for s, p in zip(op.item.shape, op.pad, strict=True))
        assert fits == plane.shape, (op.item.shape, op.pad, plane.shape)
        plane[...] = 0
        plane[tuple(slice(0, s) for s in op.item.shape)] = item_id(op.item)

    def _CopyPlane(self, op: CopyPlane) -> None:
        source, target = self.layers[op.source], self.layers[op.layer]
        source.check_index(op.source_index)
        target.check_index(op.index)
        if source.data is None:
            assert target.data is None and op.region is None
            if op.source_index in source.points:
                target.points[op.index] = source.points[op.source_index]
            return
        assert target.data is not None and op.region is not None
        region = tuple(slice(0, s) for s in op.region)
        target.data[op.index][...] = 0
        target.data[op.index][region] = source.data[op.source_index][region]

    def _ClearPlane(self, op: ClearPlane) -> None:
        layer = self.layers[op.layer]
        layer.check_index(op.index)
        if layer.data is None:
            layer.points.pop(op.index, None)
        else:
            layer.data[op.index] = 0

    def _ClearLayer(self, op: ClearLayer) -> None:
        layer = self.layers[op.layer]
        if layer.data is None:
            layer.points.clear()
        else:
            layer.data[...] = 0

    def shown(self, name: str, index: tuple[int, ...]) -> int:
        """The id of the image the plane shows (0 for an empty plane)."""
        layer = self.layers[name]
        if layer.data is None:
            return layer.points.get(index, 0)
        values = np.unique(layer.data[index])
        nonzero = [int(v) for v in values if v != 0]
        assert len(nonzero) <= 1, f"plane {name}{index} mixes images {nonzero}"
        return nonzero[0] if nonzero else 0

    def snapshot(self) -> dict[str, Any]:
        """Everything visible, for comparing two replays."""
        out: dict[str, Any] = {}
        for name, layer in sorted(self.layers.items()):
            if layer.data is not None:
                out[name] = (
                    layer.labels,
                    layer.data.dtype.str,
                    layer.data.tobytes(),
                    layer.data.shape,
                )
            else:
                out[name] = (layer.labels, tuple(layer.sizes), sorted(layer.points.items()))
        return out
