"""What the planner is told about one image: its component values, shape, dtype and kind.

This is the unit the backend puts on the wire and the viewer plans layers from. It holds no
pixels. Component values are keyed by registry component name; the virtual ``step``
component is carried as ``step_index`` and ``step_name``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

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
