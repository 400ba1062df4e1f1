"""The plan state: frozen values saying which layers exist, their axes, and what each plane holds.

Two rules make the state independent of arrival order (see docs/layering.md):

* *Structure* (layers, axes, axis values, plane shapes, dtypes, variable-size splits) is a
  monotone function of every item ever planned: unions and maxima, which commute.
* *Contents* (which image fills a plane) are the live items: per plane the item of the
  highest rank ``(run, shape, dtype)``; with ``replace_layers``, only the newest run of a
  layer group.

Large parts live in :class:`~platestream.layering._pmap.PMap` so an update shares everything
it does not touch with the previous state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platestream.config import Component, ComponentRegistry, DimensionMode, FrozenMap
from platestream.config import NapariVariableSizeHandling as SizeHandling

from ._items import LayerKind
from ._pmap import PMap
from ._slots import Coords, SlotTable
from ._values import AxisValue, SortKey, sort_key, value_text

ShapeClass = tuple[int, ...] | int  # the exact shape (SEPARATE_LAYERS) or the ndim (PAD_TO_MAX)
GroupKey = tuple[tuple[str, AxisValue], ...]  # the sliced components' values, registry order
MemberKey = tuple[LayerKind, AxisValue, ShapeClass | None]  # kind, well, shape class
LayerId = tuple[LayerKind, tuple[AxisValue, ...], tuple[ShapeClass, ...]]  # kind, well?, class?

ARRAY_KINDS = frozenset({LayerKind.IMAGE, LayerKind.LABELS})
KIND_ORDER = (LayerKind.IMAGE, LayerKind.LABELS, LayerKind.SHAPES, LayerKind.POINTS)


@dataclass(frozen=True)
class PlanSettings:
    """What the planner reads from a resolved NapariDisplayConfig, in a form it can use fast."""

    registry: ComponentRegistry
    stacked: tuple[str, ...]  # STACK components, registry order: the axes, outermost first
    sliced: tuple[str, ...]  # SLICE components, registry order: the name segments
    pad_to_max: bool
    replace: bool
    colormap: str
    channel_colormaps: Mapping[str, str]

    @classmethod
    def from_config(cls, config: Any) -> PlanSettings:
        """Settings from a resolved NapariDisplayConfig (or NapariStreamingConfig)."""
        if hasattr(config, "is_resolved") and not config.is_resolved():
            raise ValueError("plan from a resolved config: call platestream.config._resolve first")
        registry: ComponentRegistry = config.registry
        modes = {c.name: DimensionMode(config.mode(c.name)) for c in registry}
        return cls(
            registry=registry,
            stacked=tuple(n for n in registry.names if modes[n] is DimensionMode.STACK),
            sliced=tuple(n for n in registry.names if modes[n] is DimensionMode.SLICE),
            pad_to_max=config.variable_size_handling is SizeHandling.PAD_TO_MAX,
            replace=bool(config.replace_layers),
            colormap=str(config.colormap.value),
            channel_colormaps=FrozenMap(
                {str(k): str(v.value) for k, v in config.channel_colormaps.items()}
            ),
        )

    def shape_class(self, shape: tuple[int, ...]) -> ShapeClass:
        return len(shape) if self.pad_to_max else shape

    def position(self, component: str) -> int:
        return self.stacked.index(component)

    def group_order(self, key: GroupKey) -> tuple[Any, ...]:
        """Display order of groups: registry order of components, natural order of values."""
        registry = self.registry
        return tuple((registry.index(c), sort_key(registry.get(c), v)) for c, v in key)

    def layer_order(self, layer_id: LayerId) -> tuple[Any, ...]:
        """Display order within a group: split well, then kind, then shape class."""
        kind, well, cls = layer_id
        well_order = tuple(sort_key(self.registry.get("well"), w) for w in well)
        return (well_order, KIND_ORDER.index(kind), cls)

    @property
    def well_stacked(self) -> bool:
        return "well" in self.stacked

    def colormap_for(self, kind: LayerKind, key: GroupKey) -> str | None:
        if kind is not LayerKind.IMAGE:
            return None
        channel = dict(key).get("channel")
        if channel is not None and self.channel_colormaps:
            text = str(channel)
            if text in self.channel_colormaps:
                return self.channel_colormaps[text]
            folded = {k.casefold(): v for k, v in self.channel_colormaps.items()}
            if text.casefold() in folded:
                return folded[text.casefold()]
        return self.colormap


@dataclass(frozen=True)
class AxisValues:
    """The sorted values of one stacked component, shared by every layer with that axis.

    Sharing is what keeps layers aligned: slider position 3 means the same well in every
    layer, even while workers fill the plate in a different order per step.
    """

    component: Component
    values: tuple[AxisValue, ...] = ()
    keys: tuple[SortKey, ...] = ()
    labels: tuple[str, ...] = ()  # the values as text, for sliders
    index: Mapping[AxisValue, int] = FrozenMap()  # a plain dict once filled: read-only, fast

    def merged(self, new: Iterable[AxisValue]) -> tuple[AxisValues, list[tuple[int, AxisValue]]]:
        """With ``new`` values added, and (final position, value) of each, ascending."""
        component = self.component
        fresh = sorted(
            ((sort_key(component, v), v) for v in set(new) if v not in self.index),
            key=lambda pair: pair[0],
        )
        if not fresh:
            return self, []
        keys, values, labels = list(self.keys), list(self.values), list(self.labels)
        if len(fresh) <= 16:  # streaming: a few values, each put in place
            for key, value in fresh:
                at = bisect.bisect_left(keys, key)
                keys.insert(at, key)
                values.insert(at, value)
                labels.insert(at, value_text(component, value))
        else:  # a whole plate at once: one merge
            texts = [(k, v, value_text(component, v)) for k, v in fresh]
            merged = sorted([*zip(keys, values, labels, strict=True), *texts], key=lambda t: t[0])
            keys, values, labels = (
                [t[0] for t in merged],
                [t[1] for t in merged],
                [t[2] for t in merged],
            )
        index = {v: i for i, v in enumerate(values)}
        inserted = [(index[v], v) for _, v in fresh]  # ascending, since fresh is sorted
        result = AxisValues(component, tuple(values), tuple(keys), tuple(labels), index)
        return result, inserted


@dataclass(frozen=True, slots=True)
class Member:
    """What a (kind, well, shape class) contributes to its layer: max plane shape, dtype."""

    plane_shape: tuple[int, ...] | None
    dtype: str | None


@dataclass(frozen=True, slots=True)
class Split:
    """How a layer group is cut into layers when its images' shapes differ."""

    by_well: bool  # one layer per well (the reference's rule)
    mixed_wells: frozenset[AxisValue]  # wells whose own images still differ: by shape too
    by_shape: bool  # no well axis to split by: one layer per shape class

    def layer_id(self, kind: LayerKind, well: AxisValue, cls: ShapeClass | None) -> LayerId:
        well_part: tuple[AxisValue, ...] = (well,) if self.by_well else ()
        cut = self.by_shape or (self.by_well and well in self.mixed_wells)
        cls_part: tuple[ShapeClass, ...] = (cls,) if cut and cls is not None else ()
        return (kind, well_part, cls_part)


def split_of(
    classes: frozenset[ShapeClass], axes: tuple[str, ...], mixed: frozenset[AxisValue]
) -> Split:
    """The split a group needs: none while its images share one shape class."""
    many = len(classes) > 1
    by_well = many and "well" in axes
    return Split(by_well, mixed if by_well else frozenset(), many and not by_well)


@dataclass(frozen=True, slots=True)
class GroupState:
    """One layer group: a step and one value per sliced component, all kinds together."""

    key: GroupKey
    axes: tuple[str, ...]  # stacked components some item has, registry order
    absent: frozenset[str]  # stacked components some item lacks
    axes_mask: int  # the same two sets as bits over the settings' stacked components
    absent_mask: int
    members: PMap[MemberKey, Member]
    classes: frozenset[ShapeClass]  # shape classes of the group's images and labels
    well_classes: PMap[AxisValue, frozenset[ShapeClass]]
    mixed_wells: frozenset[AxisValue]
    run: int | None  # the newest run seen (replace_layers)
    slots: SlotTable
    layers: PMap[LayerId, str]
    split: Split

    def layer_axes(self, layer_id: LayerId) -> tuple[str, ...]:
        if layer_id[1]:  # split by well: the well is in the name, not an axis
            return tuple(a for a in self.axes if a != "well")
        return self.axes


def new_group(key: GroupKey, width: int) -> GroupState:
    """An empty group; ``width`` is the number of stacked components."""
    return GroupState(
        key=key,
        axes=(),
        absent=frozenset(),
        axes_mask=0,
        absent_mask=0,
        members=PMap(),
        classes=frozenset(),
        well_classes=PMap(),
        mixed_wells=frozenset(),
        run=None,
        slots=SlotTable(width),
        layers=PMap(),
        split=split_of(frozenset(), (), frozenset()),
    )


@dataclass(frozen=True, slots=True)
class LayerState:
    name: str
    group: GroupKey
    layer_id: LayerId
    axes: tuple[str, ...]
    plane_shape: tuple[int, ...] | None
    dtype: str | None
    colormap: str | None

    @property
    def kind(self) -> LayerKind:
        return self.layer_id[0]


@dataclass(frozen=True)
class PlanState:
    """Everything the planner knows. Immutable; ``update`` returns a new one."""

    settings: PlanSettings
    values: Mapping[str, AxisValues]
    groups: PMap[GroupKey, GroupState]
    layers: PMap[str, LayerState]

    @classmethod
    def empty(cls, config: Any) -> PlanState:
        """The state before any item, for a resolved display config (or PlanSettings)."""
        settings = config if isinstance(config, PlanSettings) else PlanSettings.from_config(config)
        values = {n: AxisValues(settings.registry.get(n)) for n in settings.stacked}
        return cls(settings, FrozenMap(values), PMap(), PMap())

    def index_of(self, axes: tuple[str, ...], coords: Coords) -> tuple[int, ...]:
        """The index of ``coords`` (values of every stacked component) along ``axes``."""
        stacked = self.settings.stacked
        return tuple(self.values[a].index[coords[stacked.index(a)]] for a in axes)
