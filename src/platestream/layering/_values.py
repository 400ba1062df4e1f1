"""Component values as the planner sees them: canonical form, total order, text, layer names.

Values arrive as ints or strings from parsers, the wire and user code. One canonical form per
value keeps ``1``, ``"1"`` and ``"001"`` from becoming three sites, and ``"a1"`` and ``"A01"``
from becoming two wells. The order of values is the component's natural sort key with a
type/text tie-break, so it is total and never depends on hashing.

Layer names join ``{Label}_{value}`` segments. Names must never collide, but values are free
text (a step called ``blur_Well_x`` would forge a segment). A name is therefore *plain* only
when it can be read back unambiguously; any other name gets a ``_Uid_<hash>`` suffix computed
from the layer's identity, which keeps it unique and stable without looking at other layers.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from collections.abc import Iterable
from typing import Any

from platestream.config import Component, ComponentRegistry, ConfigError, normalize_well

from ._items import ComponentValue

# A value on a stacked axis: a component value, a (index, name) step, or None for "absent".
AxisValue = ComponentValue | tuple[int, str] | None
SortKey = tuple[Any, ...]

_INT_TEXT = re.compile(r"\d+")
SHAPE_LABEL = "Shape"
UID_LABEL = "Uid"
EMPTY_NAME = "Plate"
ABSENT_TEXT = "none"


def canonical(component: str, value: object) -> AxisValue:
    """The canonical form of ``value`` for ``component``; raises ValueError if unusable."""
    if component == "step":
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
            return (_integral("step index", value[0]), value[1])
        raise ValueError(f"step value {value!r}: expected (index, name)")
    if isinstance(value, numbers.Number) and not isinstance(value, str):
        return _integral(component, value)
    if isinstance(value, str):
        if _INT_TEXT.fullmatch(value):
            return int(value)
        if component == "well":
            try:
                return normalize_well(value)
            except ConfigError:
                return value
        return value
    raise ValueError(f"{component} value {value!r}: expected an int or a string")


def _integral(component: str, value: object) -> int:
    # Equal numbers (1, True, 1.0, numpy.int64(1)) must give equal results, so that values
    # can be memoised by equality; a fractional value has no place on an index axis.
    try:
        whole: int | None = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        whole = None
    if whole is None or whole != value:
        raise ValueError(f"{component} value {value!r}: expected an int or a string")
    return whole


def sort_key(component: Component, value: AxisValue) -> SortKey:
    """A total order: absent first, then the component's natural order, then type and text."""
    if value is None:
        return (0,)
    try:
        natural = tuple(component.sort_key(value))
    except Exception:  # a custom sort key that cannot read this value still gets an order
        natural = ()
    return (1, natural, type(value).__name__, str(value))


def value_text(component: Component, value: AxisValue) -> str:
    """How a value prints in names and slider labels: ``A01``, ``001``, ``02_blur``."""
    if value is None:
        return ABSENT_TEXT
    try:
        return component.format_value(value)
    except Exception:  # e.g. a well id that is not a row and column prints as given
        return str(value)


def shape_text(cls: int | tuple[int, ...]) -> str:
    """A shape class as text: ``512x512`` for an exact shape, ``2D`` for a dimensionality."""
    if isinstance(cls, int):
        return f"{cls}D"
    return "x".join(str(n) for n in cls) if cls else "0D"


def reserved_words(registry: ComponentRegistry) -> frozenset[str]:
    """Words that mark the start of a segment; a plain value never contains them."""
    kinds = {"Labels", "Shapes", "Points"}
    return frozenset({c.label for c in registry} | kinds | {SHAPE_LABEL, UID_LABEL, EMPTY_NAME})


def _plain_text(text: str, reserved: frozenset[str]) -> bool:
    return all(word and word not in reserved for word in text.split("_"))


def _reads_back(component: Component, value: AxisValue, text: str) -> bool:
    # A step prints as "{index:02d}_{name}", which no two steps share; other values are
    # plain only if their text canonicalises back to them, which makes the text injective.
    if component.name == "step":
        return True
    try:
        return canonical(component.name, text) == value
    except ValueError:
        return False


def layer_name(
    registry: ComponentRegistry,
    segments: Iterable[tuple[str, AxisValue]],
    suffix: Iterable[str],
    identity: object,
) -> str:
    """``Label_value`` per segment (registry order is the caller's), then the suffix words.

    ``identity`` is hashed into a ``_Uid_`` suffix only when the plain name could be read
    two ways; it must be a value whose repr is deterministic (tuples of ints and strings).
    """
    reserved = reserved_words(registry)
    words: list[str] = []
    plain = True
    for name, value in segments:
        component = registry.get(name)
        text = value_text(component, value)
        words.append(f"{component.label}_{text}")
        if value is None or not (
            _plain_text(text, reserved) and _reads_back(component, value, text)
        ):
            plain = False
    parts = [*words] if words else [EMPTY_NAME]
    name = "_".join([*parts, *suffix])
    if plain:
        return name
    digest = hashlib.sha1(repr(identity).encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{name}_{UID_LABEL}_{digest[:10]}"
