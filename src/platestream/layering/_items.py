"""What the planner is told about one image: its component values, shape, dtype and kind.

This is the unit the backend puts on the wire and the viewer plans layers from. It holds no
pixels. Component values are keyed by registry component name; the virtual ``step``
component is carried as ``step_index`` and ``step_name``.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from platestream.config import FrozenMap

ComponentValue = int | str


class LayerKind(str, Enum):
    IMAGE = "image"
    LABELS = "labels"
    SHAPES = "shapes"
    POINTS = "points"


@dataclass(frozen=True)
class ImageItem:
    """One image (or labels/shapes/points payload) produced by a step."""

    components: Mapping[str, ComponentValue]  # e.g. {"well": "A01", "channel": "DAPI", "site": 1}
    step_index: int
    step_name: str
    shape: tuple[int, ...]  # the payload's own shape: (Y, X) for images and labels
    dtype: str  # numpy dtype string, e.g. "uint16"
    kind: LayerKind = LayerKind.IMAGE
    extra: Mapping[str, Any] = field(default_factory=FrozenMap)  # e.g. the source path

    def __post_init__(self) -> None:
        # A plain dict beside the FrozenMap: the planner reads components in its hot loop.
        lookup = dict(self.components.items())
        if "step" in lookup:
            raise ValueError("ImageItem: give the step as step_index/step_name, not components")
        object.__setattr__(self, "_lookup", lookup)
        if not isinstance(self.components, FrozenMap):
            object.__setattr__(self, "components", FrozenMap(lookup))
        if not isinstance(self.extra, FrozenMap):
            object.__setattr__(self, "extra", FrozenMap(self.extra))
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @property
    def lookup(self) -> Mapping[str, ComponentValue]:
        """The components as a plain dict; read-only by convention, fast to query."""
        lookup: Mapping[str, ComponentValue] = self.__dict__["_lookup"]
        return lookup

    def value(self, component: str) -> ComponentValue | tuple[int, str] | None:
        """The item's value of a registry component (``step`` -> (index, name)); None if absent."""
        if component == "step":
            return (self.step_index, self.step_name)
        return self.components.get(component)


def plane_key(item: ImageItem) -> Hashable:
    """Where an image shows: images with the same key land on the same plane of the same
    layer, so the newer replaces the older. Both sides of the wire use this one key: the
    producer's pool (newest wins for a pending plane) and the viewer's display queue."""
    return (item.kind, item.step_index, item.step_name, tuple(sorted(item.components.items())))


#: The most axes an image's own plane may have; the planner stacks up to one axis per
#: component in front of it, and numpy arrays have at most 32 (napari's broadcasting).
MAX_PLANE_DIMS = 16
#: Points and shapes: coordinates beyond this are refused (Qt draws in 32-bit integers).
MAX_COORDINATE = 2.0**30
_NUMERIC = "biuf"  # bool, signed, unsigned, float: what napari draws (complex it cannot)
_INTEGRAL = "biu"  # what a labels layer holds


@functools.lru_cache(maxsize=1024)  # per image on both sides; a plate repeats a few forms
def why_not_shown(kind: LayerKind, shape: tuple[int, ...], dtype: str) -> str | None:
    """None if a viewer can show an image of this kind, shape and dtype; else what is wrong
    and what is accepted. The producer refuses such an image before it sends anything; a
    viewer counts one that arrives anyway (forged, another version) as ``rejected``."""
    try:
        kind_code = np.dtype(dtype).kind
    except TypeError:
        return f"dtype {dtype!r} is not a numpy dtype"
    if kind in (LayerKind.IMAGE, LayerKind.LABELS):
        allowed = _INTEGRAL if kind is LayerKind.LABELS else _NUMERIC
        if kind_code not in allowed:
            expected = (
                "bool or integer (float labels with whole values are converted by the producer)"
                if kind is LayerKind.LABELS
                else "bool, integer or float (for complex data send np.abs(x) or x.real)"
            )
            return f"{kind.value} of dtype {dtype}: expected {expected}"
        if not 2 <= len(shape) <= MAX_PLANE_DIMS:
            return (
                f"{kind.value} of shape {shape}: expected 2 to {MAX_PLANE_DIMS} axes "
                "(a 2-D plane, or a stack or RGB(A) plane)"
            )
        if min(shape) < 1:
            return f"{kind.value} of shape {shape}: every axis needs at least one pixel"
        return None
    if kind_code not in _NUMERIC:
        return f"{kind.value} of dtype {dtype}: expected bool, integer or float coordinates"
    if kind is LayerKind.POINTS and not (len(shape) == 2 and shape[1] == 2):
        return f"points of shape {shape}: expected (N, 2) coordinates (y, x)"
    if kind is LayerKind.SHAPES and not (
        (len(shape) == 2 and shape[1] == 2 and shape[0] >= 3)
        or (len(shape) == 3 and shape[2] == 2 and shape[1] >= 3)
    ):
        return f"shapes of shape {shape}: expected one (V, 2) polygon or (N, V, 2), V >= 3"
    return None


def why_not_shown_values(kind: LayerKind, data: Any) -> str | None:
    """For points and shapes, the coordinates too: finite and within ``MAX_COORDINATE``
    (None for other kinds: any pixel value can be shown). Costs one pass over the data."""
    if kind not in (LayerKind.POINTS, LayerKind.SHAPES) or np.size(data) == 0:
        return None
    values = np.asarray(data)
    if values.dtype.kind == "f" and not bool(np.isfinite(values).all()):
        return f"{kind.value} coordinates must be finite (found NaN or inf)"
    if float(np.max(np.abs(values.astype(np.float64)))) >= MAX_COORDINATE:
        return f"{kind.value} coordinates must be below {MAX_COORDINATE:.0e} in size"
    return None
