"""Scratch space of one planning call: overlays on the frozen state, and the prepared items.

A call reads the previous :class:`PlanState` and writes only into overlays; ``freeze`` turns
the overlays into the next state, sharing every untouched part. Nothing here outlives the call.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import numpy as np

from .items import ImageItem, LayerKind
from .pmap import PMap
from .slots import Coords, SlotWork
from .state import (
    ARRAY_KINDS,
    GroupKey,
    GroupState,
    LayerId,
    Member,
    MemberKey,
    PlanSettings,
    ShapeClass,
    Split,
    split_of,
)
from .values import AxisValue, canonical

K = TypeVar("K")
V = TypeVar("V")
_GONE = object()


class PlanError(ValueError):
    """An item the planner cannot place (bad dtype, bad component value)."""


class Overlay(Generic[K, V]):
    """Pending changes over a PMap; ``freeze`` applies them in one step."""

    __slots__ = ("base", "changes", "empty")

    def __init__(self, base: PMap[K, V]) -> None:
        self.base = base
        self.empty = not base  # a new group's maps: skip the trie walk on every lookup
        self.changes: dict[K, object] = {}

    def get(self, key: K) -> V | None:
        value = self.changes.get(key, self)
        if value is self:
            return None if self.empty else self.base.get(key)
        return None if value is _GONE else value  # type: ignore[return-value]

    def set(self, key: K, value: V) -> None:
        self.changes[key] = value

    def delete(self, key: K) -> None:
        self.changes[key] = _GONE

    def clear(self) -> None:
        self.base, self.changes, self.empty = PMap(), {}, True

    def items(self) -> Iterator[tuple[K, V]]:
        for key, value in self.base.items():
            if key not in self.changes:
                yield key, value
        for key, change in self.changes.items():
            if change is not _GONE:
                yield key, change  # type: ignore[misc]

    def freeze(self) -> PMap[K, V]:
        if not self.changes:
            return self.base
        result = self.base
        for key in [k for k, v in self.changes.items() if v is _GONE]:
            result = result.delete(key)
        kept = {k: v for k, v in self.changes.items() if v is not _GONE}
        return result.update(kept)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=256)
def dtype_name(dtype: str) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError as err:
        raise PlanError(f"dtype {dtype!r}: not a numpy dtype") from err


@functools.lru_cache(maxsize=256)
def promote(a: str | None, b: str | None) -> str | None:
    """The dtype that holds both without loss; mixed layers are cast up, never truncated."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    return np.result_type(a, b).name


def max_shape(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


def fold(a: Member | None, b: Member) -> Member:
    """The aggregate of ``a`` and ``b``; ``a`` itself when ``b`` adds nothing."""
    if a is None:
        return b
    if a == b:
        return a
    merged = Member(max_shape(a.plane_shape, b.plane_shape), promote(a.dtype, b.dtype))
    return a if merged == a else merged


# (kind, shape, dtype, shape class) of an item; one shared tuple per distinct combination.
Form = tuple[LayerKind, tuple[int, ...], str, ShapeClass | None]


class Prepared:
    """An item with its values canonical and its keys computed once (read-only)."""

    __slots__ = (
        "cls",
        "coords",
        "dtype",
        "form",
        "group",
        "item",
        "kind",
        "present",
        "shape",
        "well",
    )

    def __init__(
        self,
        item: ImageItem,
        group: GroupKey,
        coords: Coords,
        form: Form,
        well: AxisValue,
        present: int,
    ) -> None:
        self.item, self.group, self.coords, self.form = item, group, coords, form
        self.kind, self.shape, self.dtype, self.cls = form
        self.well = well
        self.present = present  # bit i set when the item has stacked component i

    @property
    def signature(self) -> tuple[int, int, AxisValue, int]:
        """Equal for items that add the same structure. The group and form objects are
        shared by equal items (the Preparer memoises them) and alive while this is, so their
        ids are a cheap stand-in for hashing them."""
        return (id(self.group), id(self.form), self.well, self.present)

    @property
    def member_key(self) -> MemberKey:
        return (self.kind, self.well, self.cls)


_CACHE_LIMIT = 1 << 16


class Preparer:
    """Turns items into Prepared records, with the per-settings work done once.

    Canonical forms are memoised in plain dicts, because a plate repeats a few hundred
    values across thousands of items. Memoising by raw value is sound because ``canonical``
    maps equal raw values (``1``, ``True``, ``1.0``) to the same result.
    """

    def __init__(self, settings: PlanSettings) -> None:
        self.settings = settings
        self.well = settings.position("well") if settings.well_stacked else None
        self.sliced = tuple(n for n in settings.sliced if n != "step")
        self.stacked: list[tuple[str, dict[object, AxisValue]]] = [
            (n, {None: None}) for n in settings.stacked
        ]
        self.step_stacked = "step" in settings.stacked
        self.names = tuple(settings.stacked)
        self.coords: dict[tuple[object, ...], tuple[Coords, int]] = {}  # raw values -> coords
        self.groups: dict[tuple[object, ...], GroupKey] = {}
        self.forms: dict[tuple[object, ...], Form] = {}

    def __call__(self, item: ImageItem) -> Prepared:
        get = item.lookup.get
        try:
            raw = (item.step_index, item.step_name, *[get(n) for n in self.sliced])
            group = self.groups.get(raw)
            if group is None:
                group = self._remember(self.groups, raw, self._group(item))
            if self.step_stacked:
                coords, present = self._coords(item)
            else:  # the same (well, site) recurs for every channel and step: memoise
                raw_coords = tuple(map(get, self.names))
                known = self.coords.get(raw_coords)
                if known is None:
                    known = self._remember(self.coords, raw_coords, self._plain_coords(get))
                coords, present = known
        except (TypeError, ValueError) as err:  # TypeError: an unhashable value
            raise PlanError(f"item {_describe(item)}: {err}") from err
        form = self.forms.get((item.kind, item.shape, item.dtype))
        if form is None:
            form = self._remember(self.forms, (item.kind, item.shape, item.dtype), self._form(item))
        well = None if self.well is None else coords[self.well]
        return Prepared(item, group, coords, form, well, present)

    def _group(self, item: ImageItem) -> GroupKey:
        get = item.lookup.get
        step = (item.step_index, item.step_name)
        raw = [(n, step if n == "step" else get(n)) for n in self.settings.sliced]
        return tuple((n, canonical(n, v)) for n, v in raw if v is not None)

    def _plain_coords(self, get: Any) -> tuple[Coords, int]:
        out: list[AxisValue] = []
        present = 0
        missing = object()
        for bit, (name, cache) in enumerate(self.stacked):
            raw = get(name)
            found = cache.get(raw, missing)
            value = self._remember(cache, raw, canonical(name, raw)) if found is missing else found
            out.append(value)  # type: ignore[arg-type]
            if value is not None:
                present |= 1 << bit
        return tuple(out), present

    def _coords(self, item: ImageItem) -> tuple[Coords, int]:
        step = (item.step_index, item.step_name)
        get = item.lookup.get
        raw = [(n, step if n == "step" else get(n)) for n, _ in self.stacked]
        coords = tuple(None if v is None else canonical(n, v) for n, v in raw)
        return coords, sum(1 << i for i, c in enumerate(coords) if c is not None)

    def _form(self, item: ImageItem) -> Form:
        kind = LayerKind(item.kind)
        if kind not in ARRAY_KINDS:  # a points/shapes payload has no plane shape
            return (kind, (), "", None)
        if item.shape and min(item.shape) < 0:
            raise PlanError(f"item {_describe(item)}: negative shape {item.shape}")
        return (kind, item.shape, dtype_name(item.dtype), self.settings.shape_class(item.shape))

    @staticmethod
    def _remember(cache: dict[Any, Any], key: object, value: V) -> V:
        if len(cache) > _CACHE_LIMIT:  # hostile input cannot grow memory without bound
            cache.clear()
        cache[key] = value
        return value


def _describe(item: ImageItem) -> str:
    parts = ", ".join(f"{k}={v!r}" for k, v in item.components.items())
    return f"(step {item.step_index} {item.step_name!r}; {parts})"


class GroupWork:
    """A layer group being changed by the current call."""

    __slots__ = (
        "absent",
        "absent_mask",
        "all_mask",
        "axes",
        "axes_mask",
        "changed",
        "classes",
        "key",
        "layers",
        "members",
        "mixed_wells",
        "old",
        "run",
        "slots",
        "well_classes",
    )

    def __init__(self, old: GroupState, settings: PlanSettings) -> None:
        self.old = old
        self.key = old.key
        self.all_mask = (1 << len(settings.stacked)) - 1
        self.axes_mask = old.axes_mask
        self.absent_mask = old.absent_mask
        self.axes = old.axes
        self.absent = old.absent
        self.members: Overlay[MemberKey, Member] = Overlay(old.members)
        self.classes = old.classes
        self.well_classes: Overlay[AxisValue, frozenset[ShapeClass]] = Overlay(old.well_classes)
        self.mixed_wells = old.mixed_wells
        self.run = old.run
        self.slots = SlotWork(old.slots)
        self.layers: Overlay[LayerId, str] = Overlay(old.layers)
        self.changed: dict[MemberKey, Member] = {}  # members whose aggregate grew this call

    @property
    def reshaped(self) -> bool:
        """Whether this call changed the group's axes or how it is split."""
        old = self.old
        return (
            self.axes is not old.axes
            or self.classes is not old.classes
            or self.mixed_wells is not old.mixed_wells
        )

    def split(self) -> Split:
        if not self.reshaped:
            return self.old.split
        return split_of(self.classes, self.axes, self.mixed_wells)

    def layer_axes(self, layer_id: LayerId) -> tuple[str, ...]:
        if layer_id[1]:
            return tuple(a for a in self.axes if a != "well")
        return self.axes

    def note(self, settings: PlanSettings, p: Prepared) -> None:
        """Record what ``p`` adds to the group's structure (it counts even if superseded)."""
        if p.present & ~self.axes_mask or ~p.present & self.all_mask & ~self.absent_mask:
            self._note_axes(settings, p.present)
        key = p.member_key
        old = self.members.get(key)
        member = Member(p.shape if p.cls is not None else None, p.dtype or None)
        if old == member:
            return  # a known member adds nothing; its class is known to group and well
        new = fold(old, member)
        if new is not old:
            self.members.set(key, new)
            self.changed[key] = new
        if p.cls is not None and p.cls not in self.classes:
            self.classes = self.classes | {p.cls}
        if p.cls is not None and settings.well_stacked:
            seen = self.well_classes.get(p.well) or frozenset()
            if p.cls not in seen:
                self.well_classes.set(p.well, seen | {p.cls})
                if seen:
                    self.mixed_wells = self.mixed_wells | {p.well}

    def _note_axes(self, settings: PlanSettings, present: int) -> None:
        stacked = settings.stacked
        self.axes_mask |= present
        self.absent_mask |= self.all_mask & ~present
        self.axes = tuple(n for i, n in enumerate(stacked) if self.axes_mask >> i & 1)
        self.absent = frozenset(n for i, n in enumerate(stacked) if self.absent_mask >> i & 1)

    def freeze(self) -> GroupState:
        return GroupState(
            key=self.key,
            axes=self.axes,
            absent=self.absent,
            axes_mask=self.axes_mask,
            absent_mask=self.absent_mask,
            members=self.members.freeze(),
            classes=self.classes,
            well_classes=self.well_classes.freeze(),
            mixed_wells=self.mixed_wells,
            run=self.run,
            slots=self.slots.freeze(),
            layers=self.layers.freeze(),
            split=self.split(),
        )
