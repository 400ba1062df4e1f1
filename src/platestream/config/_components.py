"""The component registry: the microscopy components images are laid out by.

The registry is the single source of truth. Its order is the order of everything in
platestream: the ``<component>_mode`` config fields, the stacked axes of a layer (the first
component is the outermost slider), and the segments of a layer name. Nothing is ever
ordered by a set or a hash.

Default order: step, well, channel, site, timepoint, z_index. Step comes first so layer
names start with ``Step_02_blur``; channel precedes site so a name reads
``..._Well_A01_Channel_DAPI_Site_001`` (the reference's convention); timepoint precedes
z_index so napari shows (..., T, Z, Y, X), the order it expects for volumes over time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from ._errors import ConfigError


class DimensionMode(str, Enum):
    """How a component is shown: one layer per value (SLICE) or an axis of a layer (STACK)."""

    SLICE = "slice"
    STACK = "stack"


_DIGITS = re.compile(r"(\d+)")
_WELL = re.compile(r"^([A-Za-z]{1,2})0*(\d{1,3})$")


def natural_key(value: object) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: A2 < A10, 2 < 10, 'z9' < 'z10'."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return ((0, value),)
    parts = _DIGITS.split(str(value))
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")


def _row_number(letters: str) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + (ord(char) - ord("A") + 1)
    return number


def _row_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def normalize_well(value: object) -> str:
    """'a1', 'A1', 'A001', ('A', 1) or (1, 1) -> 'A01'. Rows up to AF for 1536-well plates."""
    if isinstance(value, tuple) and len(value) == 2:
        row, col = value
        letters = _row_letters(row) if isinstance(row, int) else str(row).upper()
        return f"{letters}{int(col):02d}"
    match = _WELL.match(str(value).strip())
    if match is None:
        raise ConfigError(f"well {value!r}: expected a row letter and a column, like A01")
    return f"{match.group(1).upper()}{int(match.group(2)):02d}"


def well_key(value: object) -> tuple[int, int]:
    match = _WELL.match(str(value))
    if match is None:
        return (0, 0)
    return (_row_number(match.group(1)), int(match.group(2)))


def _padded(width: int) -> Callable[[object], str]:
    def fmt(value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:0{width}d}"
        return str(value)

    return fmt


def _plain(value: object) -> str:
    return str(value)


def _step(value: object) -> str:
    # A step value is (index, name); it prints as 02_gaussian_blur.
    if isinstance(value, tuple) and len(value) == 2:
        index, name = value
        return f"{int(index):02d}_{name}"
    return str(value)


def _step_key(value: object) -> tuple[tuple[int, int | str], ...]:
    if isinstance(value, tuple) and len(value) == 2:
        return ((0, int(value[0])), *natural_key(value[1]))
    return natural_key(value)


@dataclass(frozen=True)
class Component:
    """One microscopy component: its name, label, how values print and sort, default mode."""

    name: str
    label: str
    default_mode: DimensionMode
    format_value: Callable[[object], str] = field(default=_plain, compare=False)
    sort_key: Callable[[object], tuple[object, ...]] = field(default=natural_key, compare=False)
    virtual: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ConfigError(f"component name {self.name!r}: expected a lower-case identifier")

    @property
    def mode_field(self) -> str:
        return f"{self.name}_mode"

    def segment(self, value: object) -> str:
        """The layer-name segment for one value: ``Well_A01``, ``Site_001``."""
        return f"{self.label}_{self.format_value(value)}"


@dataclass(frozen=True)
class ComponentRegistry:
    """An ordered, immutable set of components."""

    components: tuple[Component, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"component registry: duplicate names {duplicates}")

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components)

    def __len__(self) -> int:
        return len(self.components)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.components)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    def get(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise ConfigError(f"unknown component {name!r}; known: {', '.join(self.names)}")

    def index(self, name: str) -> int:
        return self.names.index(name)

    def extended(self, *components: Component) -> ComponentRegistry:
        """A new registry with ``components`` appended (the original is unchanged)."""
        return ComponentRegistry(self.components + tuple(components))


DEFAULT_REGISTRY = ComponentRegistry(
    (
        Component(
            "step",
            "Step",
            DimensionMode.SLICE,
            format_value=_step,
            sort_key=_step_key,
            virtual=True,
            doc="the processing step that produced the image, as (index, name)",
        ),
        Component(
            "well",
            "Well",
            DimensionMode.STACK,
            format_value=lambda v: normalize_well(v),
            sort_key=well_key,
            doc="the plate well, printed A01",
        ),
        Component("channel", "Channel", DimensionMode.SLICE, doc="the imaging channel"),
        Component(
            "site", "Site", DimensionMode.STACK, format_value=_padded(3), doc="the field of view"
        ),
        Component(
            "timepoint",
            "Timepoint",
            DimensionMode.STACK,
            format_value=_padded(3),
            doc="the time point",
        ),
        Component(
            "z_index", "Z", DimensionMode.STACK, format_value=_padded(3), doc="the focal plane"
        ),
    )
)
