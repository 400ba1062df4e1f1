"""Read-only questions about a plan state: its layers, where an item goes, what is missing.

These walk a group's planes, so they cost a group's size; the viewer's hot path needs none
of them (the operations carry everything), they serve tables, tests and tools.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ._items import ImageItem, LayerKind
from ._ops import Axis, Index
from ._plan_state import ARRAY_KINDS, GroupState, LayerState, PlanState
from ._prepared_items import PlanError, preparer_for
from ._slots import Slot
from ._values import AxisValue


@dataclass(frozen=True)
class LayerPlan:
    """One planned layer, as a table row: what napari will show."""

    name: str
    kind: LayerKind
    axes: tuple[Axis, ...]
    plane_shape: tuple[int, ...] | None
    dtype: str | None
    colormap: str | None
    components: Mapping[str, AxisValue]  # the sliced values (and the well, if split by well)
    filled: int  # planes that hold an image

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes) + (self.plane_shape or ())

    @property
    def axis_labels(self) -> tuple[str, ...]:
        return tuple(axis.label for axis in self.axes)

    @property
    def planes(self) -> int:
        """How many planes the stacked axes span (1 when there are none)."""
        count = 1
        for axis in self.axes:
            count *= axis.size
        return count


@dataclass(frozen=True)
class Placement:
    """Where an item's plane is: its layer, its index along the stacked axes, its padding."""

    layer: str
    index: Index
    pad: tuple[int, ...]
    live: bool  # whether this item's rank is the one the plane shows now


def _axes(state: PlanState, layer: LayerState) -> tuple[Axis, ...]:
    axes = []
    for name in layer.axes:
        values = state.values[name]
        axes.append(Axis(name, values.component.label, values.values, values.labels))
    return tuple(axes)


def _planes(state: PlanState, group: GroupState) -> Iterator[tuple[str, Index, Slot]]:
    """(layer name, index, slot) of every live plane of a group."""
    settings = state.settings
    well_at = settings.position("well") if settings.well_stacked else None
    for (kind, coords), slot in group.slots.items():
        well = None if well_at is None else coords[well_at]
        cls = settings.shape_class(slot[1]) if kind in ARRAY_KINDS else None
        name = group.layers[group.split.layer_id(kind, well, cls)]
        yield name, state.index_of(state.layers[name].axes, coords), slot


def layer_plans(state: PlanState) -> tuple[LayerPlan, ...]:
    """Every layer, in display order: groups by registry order and natural value order."""
    settings = state.settings
    rows = []
    for group in state.groups.values():
        filled: dict[str, int] = {}
        for name, _index, _slot in _planes(state, group):
            filled[name] = filled.get(name, 0) + 1
        for layer_id, name in group.layers.items():
            layer = state.layers[name]
            order = (settings.group_order(group.key), settings.layer_order(layer_id))
            rows.append((order, _row(state, layer, filled.get(name, 0))))
    rows.sort(key=lambda row: row[0])
    return tuple(row for _order, row in rows)


def _row(state: PlanState, layer: LayerState, filled: int) -> LayerPlan:
    components = dict(layer.group)
    if layer.layer_id[1]:
        components["well"] = layer.layer_id[1][0]
    return LayerPlan(
        layer.name,
        layer.kind,
        _axes(state, layer),
        layer.plane_shape,
        layer.dtype,
        layer.colormap,
        components,
        filled,
    )


def _group_of(state: PlanState, name: str) -> GroupState:
    if name not in state.layers:
        raise KeyError(f"no layer named {name!r}")
    return state.groups[state.layers[name].group]


def filled_planes(state: PlanState, name: str) -> dict[Index, Slot]:
    """Index -> (run, shape, dtype) of the image each filled plane of a layer shows."""
    group = _group_of(state, name)
    return {index: slot for layer, index, slot in _planes(state, group) if layer == name}


def missing_planes(state: PlanState, name: str) -> tuple[Index, ...]:
    """The indices of a layer's planes that no image fills yet, in order."""
    filled = filled_planes(state, name)
    sizes = [len(state.values[a].values) for a in state.layers[name].axes]
    return tuple(i for i in itertools.product(*(range(n) for n in sizes)) if i not in filled)


def plane_padding(state: PlanState, name: str) -> dict[Index, tuple[int, ...]]:
    """PAD_TO_MAX: per filled plane, the zeros after its image in each plane dimension."""
    plane_shape = state.layers[name].plane_shape
    if plane_shape is None:
        return {}
    padding = {}
    for index, (_run, shape, _dtype) in filled_planes(state, name).items():
        pad = tuple(n - s for n, s in zip(plane_shape, shape, strict=True))
        if any(pad):
            padding[index] = pad
    return padding


def locate(state: PlanState, item: ImageItem, run: int = 0) -> Placement:
    """Where ``item`` (of ``run``) goes in ``state``; PlanError if it was never planned."""
    p = preparer_for(state.settings)(item)
    group = state.groups.get(p.group)
    if group is None:
        raise PlanError(f"item's layer group {p.group} is not in the plan")
    name = group.layers.get(group.split.layer_id(p.kind, p.well, p.cls))
    if name is None:
        raise PlanError(f"item's layer ({p.kind.value}, well {p.well}) is not in the plan")
    layer = state.layers[name]
    try:
        index = state.index_of(layer.axes, p.coords)
    except KeyError as err:
        raise PlanError(f"item's {err} is not on the layer's axes") from None
    pad: tuple[int, ...] = ()
    if layer.plane_shape is not None and p.cls is not None:
        pad = tuple(n - s for n, s in zip(layer.plane_shape, p.shape, strict=True))
    live = group.slots.get(p.kind, p.coords) == (run, p.shape, p.dtype)
    return Placement(name, index, pad, live)
