"""Received images -> plan operations -> the layer store, one plan per display config.

Every batch carries its producer's resolved display config. Producers that agree on the
display fields (``NapariDisplayConfig``: colormaps, modes, size handling, replace_layers)
share one ``PlanState``, whatever their transport or delivery settings; a producer with
other display fields gets a plan of its own. Plans are independent, so two of them can
name the same layer: the first config to create a name owns it, and the same name from
any later config becomes ``"<name> (<n>)"``, ``n`` being that config's number in order of
arrival (2, 3, ...). Neither plan's content ever lands in the other's layer.

The run of an image (``platestream.layering.update``'s ``run``) is ``item.extra["run"]``
when the producer set an int there (e.g. its start time in ms, so with ``replace_layers``
a newer run clears the old), else 0: the viewer cannot tell one pipeline run from the
next on its own, because a run's workers are several producers.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from platestream.backend import ReceivedImage
from platestream.config import DEFAULT_REGISTRY, ComponentRegistry, NapariDisplayConfig
from platestream.layering import (
    AxisValue,
    CreateLayer,
    ImageItem,
    PlanError,
    PlanState,
    RemoveLayer,
    declare,
    update,
    value_text,
    why_not_shown,
    why_not_shown_values,
)
from platestream.schemas import DropReason, display_to_wire

from ._layer_store import LayerStore, StoredLayer
from ._stack import Array, StoredPlane

log = logging.getLogger(__name__)


def display_key(display: Any) -> Hashable:
    """What makes two configs lay images out alike: the display fields and the registry."""
    fields = tuple(getattr(display, name) for name in NapariDisplayConfig.field_names())
    return (display.registry, fields)


def run_of(item: ImageItem) -> int:
    run = item.extra.get("run", 0)
    return run if isinstance(run, int) and not isinstance(run, bool) else 0


@dataclass
class _Plan:
    state: PlanState
    registry: ComponentRegistry
    number: int  # 1 for the first config seen, 2 for the next...
    names: dict[str, str] = field(default_factory=dict)  # plan name -> napari name


class Plans:
    """Owns the plan states and the layer store; all calls on the GUI thread."""

    def __init__(self, store: LayerStore | None = None) -> None:
        self.store = store or LayerStore()
        self._plans: dict[Hashable, _Plan] = {}
        self._owners: dict[str, _Plan] = {}  # napari name -> the plan that created it
        self._registries: dict[str, ComponentRegistry] = {}
        self._dropped: list[tuple[DropReason, ImageItem]] = []
        self._wire: dict[Hashable, dict[str, Any]] = {}  # display key -> its wire form
        # The plate layouts producers declared: component -> its values (a dict keeps order).
        self._declared: dict[str, dict[Any, None]] = {}

    def declare(self, layout: Mapping[str, Sequence[Any]]) -> None:
        """A producer declared its plate's layout (component -> the values it expects): every
        plan, now and later, sizes its layers for them at once (``layering.declare``)."""
        for component, values in layout.items():
            self._declared.setdefault(component, {}).update(dict.fromkeys(values))
        for plan in self._plans.values():
            self._declare_into(plan)
        if self.store.overviews is not None:  # the plate overviews: every well's place
            self.store.overviews.declare(layout)
        source: Any = self.store.source
        if hasattr(source, "declare"):  # the run store: the plate's full geometry
            source.declare(layout)

    def layer_order(self, stored: Any) -> tuple[Any, ...]:
        """Where a layer belongs in napari's list (bottom first): by its sliced components
        in the registry's order (step, channel...), each value by the order the producer
        declared (channels in channel-number order, whatever their names), else by the
        component's own sort key; within a step, images under labels, under points and
        shapes."""
        registry = self._registries.get(stored.name, DEFAULT_REGISTRY)
        key: list[Any] = []
        for name in registry.names:
            if name not in stored.components:
                continue
            value = stored.components[name]
            declared = self._declared.get(name)
            if declared is not None and value in declared:
                rank: tuple[Any, ...] = (0, list(declared).index(value))
            else:
                component = registry.get(name)
                rank = (1, component.sort_key(value))
            key.append((registry.index(name), rank))
        kinds = ("image", "labels", "points", "shapes")
        kind = (-1, kinds.index(stored.kind.value) if stored.kind.value in kinds else 3)
        # Within a step, every image under every labels layer: outlines over the composite.
        steps = [part for part in key if registry.names[part[0]] == "step"]
        others = [part for part in key if registry.names[part[0]] != "step"]
        return (tuple(steps), kind, tuple(others), stored.name)

    def _declare_into(self, plan: _Plan) -> None:
        try:
            result = declare(plan.state, self._declared)  # values: the dicts' keys
        except PlanError as err:  # the producer checks its layout; this one is not usable
            log.warning("a declared plate layout is ignored: %s", err)
            return
        if result.ops:
            self.store.apply(result.ops, lambda item: None, plan.names)
        plan.state = result.state

    def take_dropped(self) -> list[tuple[DropReason, ImageItem]]:
        """Images not shown since the last call, each with its reason: ``rejected`` (no
        layer can show it: kind, shape or dtype; or the planner refused it) and
        ``display_failed`` (writing it into the layers failed; logged)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def add(self, display: Any, images: Sequence[ReceivedImage]) -> None:
        """Plan ``images`` (shown with ``display``) and apply the operations to the store.

        Images no layer can show are dropped first. If applying a plan's operations fails
        half way (say memory runs out), that plan is reset - its layers are removed and it
        starts again from the next images - so plan and store never disagree; the images
        of the failed call are counted ``display_failed``.
        """
        plan = self._plan(display)
        source = self.store.source
        if hasattr(source, "display"):  # the run store records how its planes were shown
            key = display_key(display)
            if key not in self._wire:
                self._wire[key] = display_to_wire(display)
            source.display = self._wire[key]
        showable = []
        for image in images:
            item, data = image.item, image.data
            if why_not_shown(item.kind, tuple(data.shape), str(data.dtype)) or (
                not isinstance(data, StoredPlane) and why_not_shown_values(item.kind, data)
            ):
                self._dropped.append((DropReason.REJECTED, item))
            else:
                showable.append(image)
        for run, group in _by_run(showable):
            pixels = {id(image.item): image.data for image in group}
            leased = {id(image.item): image for image in group if image.lease is not None}
            try:
                result = update(plan.state, (image.item for image in group), run)
            except PlanError as err:
                self._dropped.extend((DropReason.REJECTED, image.item) for image in group)
                log.warning("%d images not shown: %s", len(group), err)
                continue
            self._name_new_layers(plan, result.ops)

            def pixels_of(item: ImageItem, table: dict[int, Array] = pixels) -> Array | None:
                return table.get(id(item))

            def intact(item: ImageItem, table: dict[int, ReceivedImage] = leased) -> bool:
                image = table.get(id(item))
                return image is None or image.intact()

            try:
                self.store.apply(result.ops, pixels_of, plan.names, intact if leased else None)
            except Exception:
                log.exception("%d images not shown: their layers are reset", len(group))
                self._dropped.extend((DropReason.DISPLAY_FAILED, image.item) for image in group)
                plan = self._reset(display, plan)
                continue
            self._forget_removed(plan, result.ops)
            plan.state = result.state

    def _reset(self, display: Any, plan: _Plan) -> _Plan:
        """Forget ``plan`` and remove its layers from the store; a fresh plan takes its key."""
        names = set(plan.names.values())
        names |= {name for name, owner in self._owners.items() if owner is plan}
        self.store.remove_layers(sorted(names))
        for name in names:
            self._owners.pop(name, None)
            self._registries.pop(name, None)
        fresh = _Plan(PlanState.empty(display), plan.registry, plan.number)
        self._plans[display_key(display)] = fresh
        if self._declared:
            self._declare_into(fresh)
        return fresh

    def clear(self) -> list[str]:
        """Forget every plan and layer; returns the napari names to remove."""
        self._plans.clear()
        self._owners.clear()
        self._registries.clear()
        # Declared layouts stay: producers streaming on after a clear do not declare again.
        return self.store.clear()

    def describe(self, name: str, index: Sequence[int]) -> str:
        """``Step 01_raw | Well A01 | Channel DAPI | Site 002`` for layer ``name`` at the
        slider position ``index`` (one entry per stacked axis), in registry order."""
        layer = self.store.layers.get(name)
        registry = self._registries.get(name)
        if layer is None or registry is None:
            return ""
        parts: list[tuple[int, str]] = []
        for component, value in layer.components.items():
            parts.append(_part(registry, component, value))
        for axis, position in zip(layer.axes, index, strict=False):
            if 0 <= position < len(axis.value_labels):
                order = registry.index(axis.component) if axis.component in registry else 99
                parts.append((order, f"{axis.label} {axis.value_labels[position]}"))
        return " | ".join(text for _, text in sorted(parts, key=lambda p: p[0]))

    def layer(self, name: str) -> StoredLayer | None:
        return self.store.layers.get(name)

    # ------------------------------------------------------------------ helpers

    def _plan(self, display: Any) -> _Plan:
        key = display_key(display)
        plan = self._plans.get(key)
        if plan is None:
            number = len(self._plans) + 1
            plan = _Plan(PlanState.empty(display), display.registry, number)
            self._plans[key] = plan
            if self._declared:
                self._declare_into(plan)
        return plan

    def _name_new_layers(self, plan: _Plan, ops: Iterable[Any]) -> None:
        for op in ops:
            if not isinstance(op, CreateLayer):
                continue
            name = op.name
            owner = self._owners.get(name)
            if owner is not None and owner is not plan:
                name = f"{op.name} ({plan.number})"
                log.warning("two display configs name layer %s; the second is %s", op.name, name)
            plan.names[op.name] = name
            self._owners[name] = plan
            self._registries[name] = plan.registry

    def _forget_removed(self, plan: _Plan, ops: Iterable[Any]) -> None:
        for op in ops:
            if isinstance(op, RemoveLayer):
                name = plan.names.pop(op.layer, op.layer)
                self._owners.pop(name, None)
                self._registries.pop(name, None)


def _part(registry: ComponentRegistry, component: str, value: AxisValue) -> tuple[int, str]:
    if component not in registry:
        return (99, f"{component} {value}")
    spec = registry.get(component)
    return (registry.index(component), f"{spec.label} {value_text(spec, value)}")


def _by_run(images: Sequence[ReceivedImage]) -> list[tuple[int, list[ReceivedImage]]]:
    """Consecutive images of one run together, in arrival order."""
    groups: list[tuple[int, list[ReceivedImage]]] = []
    for image in images:
        run = run_of(image.item)
        if groups and groups[-1][0] == run:
            groups[-1][1].append(image)
        else:
            groups.append((run, [image]))
    return groups
