"""The layer-planning engine: (state, new items, run) -> (new state, operations).

A call has two phases. *Structure* records what every new item adds (axes, axis values,
shape classes, dtypes) and brings the layers up to date: new axis values are inserted into
existing layers, new layers are created, and a group whose images turned out to differ in
shape is split (see :mod:`.reshape`). *Contents* then places each item: the plane it fills,
unless a higher-ranked item already holds it, and with ``replace_layers`` the clearing of a
group when a newer run reaches it.

Cost: proportional to the new items, plus the layers that share a newly seen axis value,
plus a group's size on the rare call that splits it or starts a new run in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platestream.config import FrozenMap

from ._items import ImageItem
from ._ops import ClearLayer, ClearPlane, InsertIndex, Operation, SetAxisLabels, WritePlane
from ._plan_overlays import GroupWork
from ._plan_state import PlanState, Split
from ._prepared_items import PlanError, PreparedItem, preparer_for
from ._reshape import Reshaper
from ._slots import Slot, split_key
from ._values import AxisValue, canonical

__all__ = ["PlanError", "PlanUpdate", "declare", "layout_of", "plan", "update"]


@dataclass(frozen=True)
class PlanUpdate:
    """The new state, the operations that lead to it, and the items that changed nothing."""

    state: PlanState
    ops: tuple[Operation, ...]
    superseded: tuple[ImageItem, ...]  # an older run's, or a plane a higher-ranked item holds


def update(state: PlanState, items: Iterable[ImageItem], run: int = 0) -> PlanUpdate:
    """Plan ``items`` of run ``run`` on top of ``state``; ``state`` itself is not changed.

    ``run`` identifies one execution of a pipeline; a larger number is a newer run. With
    ``replace_layers`` a layer group shows only its newest run; otherwise runs accumulate
    and the newest run's image wins where two share a plane. An invalid item raises
    PlanError before anything is planned.
    """
    prepare = preparer_for(state.settings)
    prepared = [prepare(item) for item in items]
    call = _Call(state)
    call.structure(prepared)
    call.contents(prepared, run)
    return call.finish()


def declare(state: PlanState, layout: Mapping[str, Iterable[object]]) -> PlanUpdate:
    """Add the component values a producer expects (its plate's declared layout) to the
    stacked axes, so layers are made at their final size when their first image comes and
    later images only fill planes. Layers that exist already get the new positions
    (``InsertIndex``). Components that are not stacked (or unknown) are ignored; a value no
    component takes raises PlanError. Declaring what is known already changes nothing.
    """
    call = _Call(state)
    call.declare(layout)
    call.relabel_grown()
    return call.finish()


def layout_of(components: Iterable[Mapping[str, object]]) -> dict[str, list[object]]:
    """A layout to ``declare``: each component's values over ``components`` (one mapping
    per image), in order of first appearance; absent (None) values left out."""
    values: dict[str, dict[object, None]] = {}
    for one in components:
        for component, value in one.items():
            if value is not None:
                values.setdefault(component, {})[value] = None
    return {component: list(found) for component, found in values.items()}


def plan(items: Iterable[ImageItem], config: Any, run: int = 0) -> PlanUpdate:
    """Plan ``items`` from scratch for a resolved display config."""
    return update(PlanState.empty(config), items, run)


class _Target:
    """Where the items of one (group, kind, well, shape class) go, resolved once per call."""

    __slots__ = ("lookups", "name", "pad", "plane_shape", "shape", "slot", "work")

    def __init__(
        self,
        work: GroupWork,
        name: str,
        lookups: list[tuple[int, Any]],
        plane_shape: tuple[int, ...] | None,
        shape: tuple[int, ...],
        slot: Slot,
    ) -> None:
        self.name, self.lookups, self.plane_shape, self.shape = name, lookups, plane_shape, shape
        self.work, self.slot = work, slot
        self.pad = self.pad_for(shape)

    def pad_for(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Zeros after an image of ``shape`` in this layer's planes (PAD_TO_MAX)."""
        if self.plane_shape is None:
            return ()
        return tuple(n - s for n, s in zip(self.plane_shape, shape, strict=True))


class _Call(Reshaper):
    """One planning call: reads the old state, collects operations and changed parts."""

    # -- structure -------------------------------------------------------------------

    def structure(self, prepared: list[PreparedItem]) -> None:
        noted: set[tuple[object, ...]] = set()
        for p in prepared:  # a plate repeats few structures: note each one once
            signature = p.signature
            if signature not in noted:
                noted.add(signature)
                self.group(p.group).note(self.settings, p)
        self._grow_values(prepared)
        for work in self.groups.values():
            self.shape_group(work)
        self.relabel_grown()

    def relabel_grown(self) -> None:
        for name in sorted(self.relabel - self.created) if self.relabel else ():
            if self.layers.get(name, self.state.layers.get(name)) is not None:
                self.ops.append(SetAxisLabels(name, self.axes_of(self.layer(name))))

    def declare(self, layout: Mapping[str, Iterable[object]]) -> None:
        for name in self.settings.stacked:
            if name not in layout or name == "step":
                continue
            values: set[AxisValue] = set()
            for raw in layout[name]:
                try:
                    values.add(canonical(name, raw))
                except ValueError as err:
                    raise PlanError(f"declared layout: {err}") from None
            known = self.values[name].index
            fresh = {value for value in values if value not in known}
            if fresh:
                merged, inserted = self.values[name].merged(fresh)
                self.set_values(name, merged)
                self._insert_into_layers(name, inserted)

    def _grow_values(self, prepared: list[PreparedItem]) -> None:
        fresh: dict[str, set[AxisValue]] = {}
        stacked = self.settings.stacked
        known = [self.values[name].index for name in stacked]
        if len(prepared) < 16:  # streaming one image at a time: skip building sets
            for p in prepared:
                for position, value in enumerate(p.coords):
                    if value is not None and value not in known[position]:
                        fresh.setdefault(stacked[position], set()).add(value)
        else:
            for position, name in enumerate(stacked):
                seen = {p.coords[position] for p in prepared}  # few distinct: filter after
                new: set[AxisValue] = {
                    v for v in seen if v is not None and v not in known[position]
                }
                if new:
                    fresh[name] = new
        for work in self.groups.values():  # an axis some items lack gets an "absent" value
            for name in work.axes:
                if name in work.absent and None not in self.values[name].index:
                    fresh.setdefault(name, set()).add(None)
        for name in self.settings.stacked:
            if name in fresh:
                merged, inserted = self.values[name].merged(fresh[name])
                self.set_values(name, merged)
                self._insert_into_layers(name, inserted)

    def _insert_into_layers(self, component: str, inserted: list[tuple[int, AxisValue]]) -> None:
        # Only layers that existed before this call: layers made later get the new values.
        holders = [layer for layer in self.state.layers.values() if component in layer.axes]
        for layer in sorted(holders, key=lambda layer: layer.name):
            axis = layer.axes.index(component)
            for position, value in inserted:  # ascending, so each position is already final
                self.ops.append(InsertIndex(layer.name, axis, position, value))
            self.relabel.add(layer.name)

    # -- contents --------------------------------------------------------------------

    def contents(self, prepared: list[PreparedItem], run: int) -> None:
        # One target per (group, form, well): every item of it has the same layer, slot
        # rank and padding. Ids stand for the memoised group and form (see signature).
        targets: dict[tuple[int, int, AxisValue], _Target] = {}
        replace_runs = self.settings.replace
        chunked = bool(self.settings.stacked)
        ops = self.ops
        for p in prepared:
            target = targets.get((id(p.group), id(p.form), p.well))
            if target is None:
                target = self._target(p, run)
                targets[(id(p.group), id(p.form), p.well)] = target
            work = target.work
            if replace_runs and not self._enter_run(work, run):
                self.superseded.append(p.item)
                continue
            coords = p.coords
            if chunked:  # split_key, inlined: the last present value keys the chunk
                last = p.present.bit_length() - 1 if p.present else 0
                outer, inner = (p.kind, coords[:last]), coords[last]
            else:
                outer, inner = split_key(p.kind, coords)
            chunk = work.slots.touched.get(outer)
            if chunk is None:
                chunk = work.slots.chunk(outer)
            old = chunk.get(inner)
            slot = target.slot
            if old is not None:
                if old > slot:
                    self.superseded.append(p.item)
                    continue
                if p.cls is not None and old[1] != p.shape:
                    self._clear_moved(work, work.split(), p, old, target.name)
            chunk[inner] = slot
            index = tuple([lookup[coords[position]] for position, lookup in target.lookups])
            ops.append(WritePlane(target.name, index, p.item, target.pad))

    def _target(self, p: PreparedItem, run: int) -> _Target:
        work = self.groups[p.group]
        name = self.name_of(work, work.split().layer_id(p.kind, p.well, p.cls))
        layer = self.layer(name)
        self.index(layer, p.coords)  # fills the lookup cache for this layer
        plane_shape = layer.plane_shape if p.cls is not None else None
        # The slot tuple is shared by the target's items that have its shape and dtype.
        slot = (run, p.shape, p.dtype)
        return _Target(work, name, self._index[name][1], plane_shape, p.shape, slot)

    def _clear_moved(
        self, work: GroupWork, split: Split, p: PreparedItem, old: Slot, name: str
    ) -> None:
        """A plane whose image changed shape class may change layer: clear where it was."""
        old_id = split.layer_id(p.kind, p.well, self.settings.shape_class(old[1]))
        old_name = self.name_of(work, old_id)
        if old_name != name:
            self.ops.append(ClearPlane(old_name, self.index(self.layer(old_name), p.coords)))

    def _enter_run(self, work: GroupWork, run: int) -> bool:
        """Whether an item of ``run`` counts; a newer run first clears the group's layers.

        A call has one run, so a group is cleared at most once per call, before any of
        its items of this call are placed.
        """
        if work.run is not None and run < work.run:
            return False
        if work.run is not None and run > work.run:
            split = work.split()
            filled = set()
            for (kind, coords), slot in work.slots.items():
                layer_id = split.layer_id(kind, self.well_of(coords), self.class_of(kind, slot))
                filled.add(self.name_of(work, layer_id))
            self.ops.extend(ClearLayer(name) for name in sorted(filled))
            work.slots.clear()
        work.run = run
        return True

    # -- result ----------------------------------------------------------------------

    def finish(self) -> PlanUpdate:
        state = self.state
        groups = state.groups.update({key: w.freeze() for key, w in self.groups.items()})
        layers = state.layers
        if self.layers:
            for name in [n for n, layer in self.layers.items() if layer is None]:
                if name in layers:
                    layers = layers.delete(name)
            kept = {n: layer for n, layer in self.layers.items() if layer is not None}
            layers = layers.update(kept)
        values = FrozenMap(self.values) if self.values is not state.values else state.values
        new_state = PlanState(self.settings, values, groups, layers)
        return PlanUpdate(new_state, tuple(self.ops), tuple(self.superseded))
