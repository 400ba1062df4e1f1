"""Items as the planner reads them: canonical values, keys and forms, computed once.

The Preparer memoises what plates repeat (groups, coordinates, (kind, shape, dtype) forms),
which is most of what makes planning a whole plate cheap.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import numpy as np

from ._items import ImageItem, LayerKind
from ._plan_state import ARRAY_KINDS, GroupKey, MemberKey, PlanSettings, ShapeClass
from ._slots import Coords
from ._values import AxisValue, canonical

V = TypeVar("V")


class PlanError(ValueError):
    """An item the planner cannot place (bad dtype, bad component value)."""


@functools.lru_cache(maxsize=256)
def dtype_name(dtype: str) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError as err:
        raise PlanError(f"dtype {dtype!r}: not a numpy dtype") from err


# (kind, shape, dtype, shape class) of an item; one shared tuple per distinct combination.
Form = tuple[LayerKind, tuple[int, ...], str, ShapeClass | None]


class PreparedItem:
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
    """Turns items into PreparedItem records, with the per-settings work done once.

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

    def __call__(self, item: ImageItem) -> PreparedItem:
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
        return PreparedItem(item, group, coords, form, well, present)

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


@functools.lru_cache(maxsize=64)
def preparer_for(settings: PlanSettings) -> Preparer:
    """The item preparer for these settings; its memo tables outlive a single call."""
    return Preparer(settings)
