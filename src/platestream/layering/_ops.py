"""The operations a viewer applies, in order, to turn the previous plan's layers into the new.

Every operation names its layer and is valid given the operations before it in the same
list. Indices are always the *current* ones: an :class:`InsertIndex` shifts the content at
and after ``index`` one step along ``axis``, and every later operation already counts with
the shifted indices. A layer's data has shape ``(len(axis.values) for axis in axes) +
plane_shape``; points and shapes layers have no plane shape and ``len(axes) + 2`` dimensions.

Mapping to napari (the viewer's job; listed here so the contract is in one place):

=================  ==================================================================
CreateLayer        ``add_image`` / ``add_labels`` / ``add_points`` / ``add_shapes`` once
RemoveLayer        ``viewer.layers.remove`` (only after a variable-size split moved it)
InsertIndex        insert an empty slab along an axis (``np.insert``) and update labels
AddAxis            ``np.expand_dims`` then pad that axis to ``size``, content at
                   ``existing_index``
ResizePlane        pad (or crop) every plane at its end to ``plane_shape`` (PAD_TO_MAX)
SetDtype           cast the data to ``dtype`` (mixed dtypes promote, never truncate)
SetAxisLabels      slider labels and value labels for the layer's axes
WritePlane         ``data[index][: shape] = pixels``, zero beyond (``pad`` says how much)
CopyPlane          copy ``region`` of one layer's plane into another's (split moves)
ClearPlane         zero one plane (its image moved to another layer)
ClearLayer         zero the whole layer (``replace_layers``: a new run starts)
=================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from platestream.config import FrozenMap

from ._items import ImageItem, LayerKind
from ._values import AxisValue

Index = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Axis:
    """One stacked axis of a layer: its component, slider label and values in order."""

    component: str
    label: str  # the slider label, e.g. "Well"
    values: tuple[AxisValue, ...]  # sorted naturally; None means "the component is absent"
    value_labels: tuple[str, ...]  # the values as text: "A01", "001"

    @property
    def size(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class CreateLayer:
    name: str
    kind: LayerKind
    axes: tuple[Axis, ...]
    plane_shape: tuple[int, ...] | None  # None for points and shapes
    dtype: str | None  # None for points and shapes
    colormap: str | None  # a napari colormap name for image layers, else None
    components: Mapping[str, AxisValue] = field(default_factory=FrozenMap)  # sliced values

    @property
    def layer(self) -> str:
        """The name, under the attribute every other operation uses."""
        return self.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes) + (self.plane_shape or ())

    @property
    def axis_labels(self) -> tuple[str, ...]:
        return tuple(axis.label for axis in self.axes)


@dataclass(frozen=True, slots=True)
class RemoveLayer:
    layer: str


@dataclass(frozen=True, slots=True)
class InsertIndex:
    """Insert an empty slab at ``index`` along ``axis``; later content shifts by one."""

    layer: str
    axis: int
    index: int
    value: AxisValue


@dataclass(frozen=True, slots=True)
class AddAxis:
    """A new axis at ``axis`` of length ``size``; the old content sits at ``existing_index``."""

    layer: str
    axis: int
    component: str
    size: int
    existing_index: int


@dataclass(frozen=True, slots=True)
class ResizePlane:
    """Pad (or crop) every plane at its end so planes have ``plane_shape``."""

    layer: str
    plane_shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SetDtype:
    layer: str
    dtype: str


@dataclass(frozen=True, slots=True)
class SetAxisLabels:
    """The layer's axes as they are now (after inserts or a new axis), labels included."""

    layer: str
    axes: tuple[Axis, ...]

    @property
    def axis_labels(self) -> tuple[str, ...]:
        return tuple(axis.label for axis in self.axes)


@dataclass(frozen=True, slots=True)
class WritePlane:
    """Write ``item``'s payload at ``index``; for arrays it fills ``plane_shape - pad``."""

    layer: str
    index: Index
    item: ImageItem
    pad: tuple[int, ...]  # zeros after the data, per plane dimension (PAD_TO_MAX)


@dataclass(frozen=True, slots=True)
class CopyPlane:
    """Copy the plane (``region`` of it, or all of a points/shapes plane) to another layer."""

    source: str
    source_index: Index
    layer: str
    index: Index
    region: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ClearPlane:
    layer: str
    index: Index


@dataclass(frozen=True, slots=True)
class ClearLayer:
    layer: str


Operation = (
    CreateLayer
    | RemoveLayer
    | InsertIndex
    | AddAxis
    | ResizePlane
    | SetDtype
    | SetAxisLabels
    | WritePlane
    | CopyPlane
    | ClearPlane
    | ClearLayer
)
