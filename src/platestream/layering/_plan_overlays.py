"""Scratch space of one planning call: overlays on the frozen state, group by group.

A call reads the previous :class:`PlanState` and writes only into overlays; ``freeze`` turns
the overlays into the next state, sharing every untouched part. Nothing here outlives the call.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Generic, TypeVar

import numpy as np

from ._plan_state import (
    GroupState,
    LayerId,
    Member,
    MemberKey,
    PlanSettings,
    ShapeClass,
    Split,
    split_of,
)
from ._pmap import PMap
from ._prepared_items import PreparedItem
from ._slots import SlotWork
from ._values import AxisValue

K = TypeVar("K")
V = TypeVar("V")
_GONE = object()


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
def promote(a: str | None, b: str | None) -> str | None:
    """The dtype that holds both; mixed layers are cast up, never truncated. Integers stay
    integers (labels layers hold nothing else): where numpy would go to float64 (uint64 with
    a signed type), the layer becomes int64."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    result = np.result_type(a, b)
    if result.kind == "f" and np.dtype(a).kind in "biu" and np.dtype(b).kind in "biu":
        return "int64"
    return result.name


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

    def note(self, settings: PlanSettings, p: PreparedItem) -> None:
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
