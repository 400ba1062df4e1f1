"""The structural half of a planning call: creating, growing, re-axing and splitting layers.

A group keeps its layers while its structure stays the same; a new member (a new well, a
larger image under PAD_TO_MAX, a wider dtype) only creates or grows a layer. When the group's
axes or its split change, :meth:`Reshaper.reconcile` recomputes the group's layers from its
members: kept layers gain axes in place (``AddAxis``), new layers are created, live planes
are copied from layers that no longer exist under the new split, which are then removed.
Splits only ever refine (structure is monotone), so each layer is removed at most once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from platestream.config import FrozenMap

from ._items import ImageItem, LayerKind
from ._ops import (
    AddAxis,
    Axis,
    ClearPlane,
    CopyPlane,
    CreateLayer,
    Operation,
    RemoveLayer,
    ResizePlane,
    SetDtype,
)
from ._plan_overlays import GroupWork, fold, max_shape, promote
from ._plan_state import (
    ARRAY_KINDS,
    AxisValues,
    GroupKey,
    LayerId,
    LayerState,
    Member,
    PlanState,
    ShapeClass,
    Split,
    new_group,
)
from ._prepared_items import PlanError
from ._slots import Coords, Slot
from ._values import SHAPE_LABEL, AxisValue, layer_name, shape_text

KIND_WORDS = {LayerKind.LABELS: "Labels", LayerKind.SHAPES: "Shapes", LayerKind.POINTS: "Points"}


class Reshaper:
    """State shared by a call, the lookups over it, and the structural operations."""

    def __init__(self, state: PlanState) -> None:
        self.state = state
        self.settings = state.settings
        self.values: Mapping[str, AxisValues] = state.values  # copied on first change
        self.groups: dict[GroupKey, GroupWork] = {}
        self.layers: dict[str, LayerState | None] = {}  # changed layers; None = removed
        self.ops: list[Operation] = []
        self.superseded: list[ImageItem] = []
        self.relabel: set[str] = set()
        self.created: set[str] = set()
        self._axes: dict[str, Axis] = {}
        self._index: dict[str, tuple[tuple[str, ...], list[tuple[int, Any]]]] = {}
        self._well = self.settings.position("well") if self.settings.well_stacked else None

    # -- lookups ---------------------------------------------------------------------

    def group(self, key: GroupKey) -> GroupWork:
        work = self.groups.get(key)
        if work is None:
            old = self.state.groups.get(key) or new_group(key, len(self.settings.stacked))
            work = GroupWork(old, self.settings)
            self.groups[key] = work
        return work

    def layer(self, name: str) -> LayerState:
        layer = self.layers[name] if name in self.layers else self.state.layers[name]
        if layer is None:
            raise KeyError(name)
        return layer

    def set_values(self, component: str, values: AxisValues) -> None:
        if self.values is self.state.values:
            self.values = dict(self.state.values)
        self.values[component] = values  # type: ignore[index]
        self._axes.pop(component, None)

    def axis(self, component: str) -> Axis:
        axis = self._axes.get(component)
        if axis is None:
            values = self.values[component]
            axis = Axis(component, values.component.label, values.values, values.labels)
            self._axes[component] = axis
        return axis

    def axes_of(self, layer: LayerState) -> tuple[Axis, ...]:
        return tuple(self.axis(a) for a in layer.axes)

    def index(self, layer: LayerState, coords: Coords) -> tuple[int, ...]:
        cached = self._index.get(layer.name)
        if cached is None or cached[0] is not layer.axes:
            stacked = self.settings.stacked
            lookups = [(stacked.index(a), self.values[a].index) for a in layer.axes]
            cached = (layer.axes, lookups)
            self._index[layer.name] = cached
        return tuple([index[coords[position]] for position, index in cached[1]])

    @staticmethod
    def name_of(work: GroupWork, layer_id: LayerId) -> str:
        name = work.layers.get(layer_id)
        if name is None:
            raise AssertionError(f"group {work.key}: no layer for {layer_id}")
        return name

    def well_of(self, coords: Coords) -> AxisValue:
        return None if self._well is None else coords[self._well]

    def class_of(self, kind: LayerKind, slot: Slot) -> ShapeClass | None:
        return self.settings.shape_class(slot[1]) if kind in ARRAY_KINDS else None

    # -- structure -------------------------------------------------------------------

    def shape_group(self, work: GroupWork) -> None:
        """Create or grow the layers the call's new members need; reconcile if reshaped."""
        if not work.old.layers or work.reshaped:
            self.reconcile(work)
            return
        split = work.split()
        for key, member in work.changed.items():
            layer_id = split.layer_id(*key)
            name = work.layers.get(layer_id)
            if name is None:
                self.create(work, layer_id, member)
            else:
                self.grow_layer(name, member)

    def reconcile(self, work: GroupWork) -> None:
        """Bring a new, re-axed or re-split group's layers in line with its members."""
        split = work.split()
        desired: dict[LayerId, Member] = {}
        for key, member in work.members.items():
            layer_id = split.layer_id(*key)
            desired[layer_id] = fold(desired.get(layer_id), member)
        existing = dict(work.layers.items())
        for layer_id in sorted(desired, key=self._order):
            name = existing.get(layer_id)
            if name is None:
                self.create(work, layer_id, desired[layer_id])
            else:
                self.extend_axes(work, name, layer_id)
                self.grow_layer(name, desired[layer_id])
        self.move_slots(work, work.old.split, split, set(desired))
        for layer_id in sorted(set(existing) - set(desired), key=self._order):
            name = existing[layer_id]
            self.ops.append(RemoveLayer(name))
            work.layers.delete(layer_id)
            self.layers[name] = None

    def _order(self, layer_id: LayerId) -> tuple[Any, ...]:
        return self.settings.layer_order(layer_id)

    def create(self, work: GroupWork, layer_id: LayerId, member: Member) -> None:
        kind, well, cls = layer_id
        registry = self.settings.registry
        segments = list(work.key)
        if well:  # split by well; an absent well prints "none" and makes the name a Uid one
            segments.append(("well", well[0]))
            segments.sort(key=lambda segment: registry.index(segment[0]))
        suffix = [f"{SHAPE_LABEL}_{shape_text(cls[0])}"] if cls else []
        if kind in KIND_WORDS:
            suffix.append(KIND_WORDS[kind])
        name = layer_name(registry, segments, suffix, identity=(work.key, layer_id))
        if self.layers.get(name, self.state.layers.get(name)) is not None:
            raise PlanError(f"layer name {name!r} would be given to two layers")
        axes = work.layer_axes(layer_id)
        colormap = self.settings.colormap_for(kind, work.key)
        layer = LayerState(
            name, work.key, layer_id, axes, member.plane_shape, member.dtype, colormap
        )
        self.layers[name] = layer
        self.created.add(name)
        work.layers.set(layer_id, name)
        components: dict[str, AxisValue] = dict(segments)
        self.ops.append(
            CreateLayer(
                name,
                kind,
                self.axes_of(layer),
                member.plane_shape,
                member.dtype,
                colormap,
                FrozenMap(components),
            )
        )

    def grow_layer(self, name: str, member: Member) -> None:
        """PAD_TO_MAX: planes grow to the largest image; mixed dtypes promote."""
        layer = self.layer(name)
        shape = max_shape(layer.plane_shape, member.plane_shape)
        dtype = promote(layer.dtype, member.dtype)
        if shape != layer.plane_shape and shape is not None:
            self.ops.append(ResizePlane(name, shape))
        if dtype != layer.dtype and dtype is not None:
            self.ops.append(SetDtype(name, dtype))
        if shape != layer.plane_shape or dtype != layer.dtype:
            self.layers[name] = replace(layer, plane_shape=shape, dtype=dtype)

    def extend_axes(self, work: GroupWork, name: str, layer_id: LayerId) -> None:
        """Give a kept layer the axes its group gained; its old planes sit at "absent"."""
        layer = self.layer(name)
        wanted = work.layer_axes(layer_id)
        if wanted == layer.axes:
            return
        order = self.settings.stacked.index
        current = list(layer.axes)
        for component in wanted:
            if component not in current:
                position = sum(1 for a in current if order(a) < order(component))
                values = self.values[component]
                size, absent = len(values.values), values.index[None]
                self.ops.append(AddAxis(name, position, component, size, absent))
                current.insert(position, component)
        self.layers[name] = replace(layer, axes=tuple(current))
        self.relabel.add(name)

    def move_slots(self, work: GroupWork, old: Split, new: Split, kept: set[LayerId]) -> None:
        """After a split, copy each live plane from its old layer to its new one."""
        if old == new:
            return
        moves = []
        for (kind, coords), slot in work.slots.items():
            well, cls = self.well_of(coords), self.class_of(kind, slot)
            source_id, target_id = old.layer_id(kind, well, cls), new.layer_id(kind, well, cls)
            if source_id != target_id:
                target = self.layer(self.name_of(work, target_id))
                index = self.index(target, coords)
                region = slot[1] if cls is not None else None
                moves.append((target.name, index, source_id, coords, region))
        moves.sort(key=lambda move: (move[0], move[1]))
        for target_name, index, source_id, coords, region in moves:
            source = self.layer(self.name_of(work, source_id))
            source_index = self.index(source, coords)
            self.ops.append(CopyPlane(source.name, source_index, target_name, index, region))
            if source_id in kept:
                self.ops.append(ClearPlane(source.name, source_index))
