"""Field specifications: type, global default, documentation and checks of one field.

One ``FieldSpec`` serves every place a field appears: the dataclass, the constructor's
validation, the TOML loader's strict structuring, the JSON Schema and the CLI.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, is_dataclass
from enum import Enum
from typing import Any

from ._frozen import FrozenMap, freeze

Check = Callable[[Any], str | None]


class FieldError(ValueError):
    """A value does not fit its field; the message says what was expected and found.

    ``subpath`` locates the bad part inside the value (``.GFP``, ``[2]``).
    """

    def __init__(self, message: str, subpath: str = "") -> None:
        super().__init__(message)
        self.subpath = subpath

    def __str__(self) -> str:
        text = str(self.args[0])
        return f"{self.subpath.lstrip('.')}: {text}" if self.subpath else text


@dataclass(frozen=True)
class MapOf:
    """A mapping type: str keys, values of ``value_type`` (an Enum or a plain type)."""

    value_type: Any


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Any  # bool, int, float, str, an Enum, MapOf(...), Any (free TOML value) or a config class
    default: Any
    doc: str
    check: Check | None = None


def suggest(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' or ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def type_name(kind: Any) -> str:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return f"one of {', '.join(repr(m.value) for m in kind)}"
    if isinstance(kind, MapOf):
        return f"a table of names to {type_name(kind.value_type)}"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if kind in names:
        return names[kind]
    if isinstance(kind, TupleOf):
        return f"an array of {type_name(kind.item_type)}"
    if kind is Any:
        return "a TOML value"
    return f"a {getattr(kind, '__name__', kind)} table"


def _found(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _enum_value(kind: type[Enum], value: Any) -> Enum:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for member in kind:
            if member.value == value:
                return member
        hint = suggest(value, [m.value for m in kind])
        raise FieldError(f"expected {type_name(kind)}; found {value!r}{hint}")
    raise FieldError(f"expected {type_name(kind)}; found {_found(value)}")


def coerce(kind: Any, value: Any) -> Any:
    """Check ``value`` against ``kind`` strictly: no '5' -> 5, no 'false' -> True, no 1 -> True.

    Enum values may be given by their string value; ints are accepted where floats are.
    """
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _enum_value(kind, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif isinstance(kind, MapOf):
        if isinstance(value, Mapping):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise FieldError(f"expected string keys; found {bad[0]!r}")
            entries: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    entries[key] = coerce(kind.value_type, item)
                except FieldError as err:
                    raise FieldError(str(err.args[0]), f".{key}{err.subpath}") from None
            return FrozenMap(entries)
    elif isinstance(kind, TupleOf):
        if isinstance(value, list | tuple):
            items = []
            for index, item in enumerate(value):
                try:
                    items.append(coerce(kind.item_type, item))
                except FieldError as err:
                    raise FieldError(str(err.args[0]), f"[{index}]{err.subpath}") from None
            return tuple(items)
    elif kind is Any:
        return freeze(value)
    elif isinstance(kind, type) and isinstance(value, kind):
        return value
    raise FieldError(f"expected {type_name(kind)}; found {_found(value)}")


def check_field(spec: FieldSpec, value: Any) -> Any:
    """Coerce and check one value for ``spec``; raises FieldError with what was expected."""
    value = coerce(spec.type, value)
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise FieldError(problem)
    return value


def check_port(value: int) -> str | None:
    # The control port is data port + 1000, so both must fit in 1..65535.
    if not 1024 <= value <= 64535:
        return f"expected a port from 1024 to 64535 (its control port is +1000); found {value}"
    return None


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_host(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    if _HOSTNAME.match(value):
        return None
    return f"expected a host name or IP address, like localhost or 10.0.0.5; found {value!r}"


def check_not_negative(value: float) -> str | None:
    return None if value >= 0 else f"expected 0 or more; found {value}"


def check_positive(value: float) -> str | None:
    return None if value > 0 else f"expected a number above 0; found {value}"


def check_between(low: float, high: float, unit: str = "") -> Check:
    """A check for a finite number above ``low`` and at most ``high``."""

    def check(value: float) -> str | None:
        if value > low and value <= high:  # also False for NaN; inf is above high
            return None
        return f"expected a number above {low:g} and at most {high:g}{unit}; found {value}"

    return check


def check_show(value: Mapping[str, Any]) -> str | None:
    """A filter: each component with a non-empty list of values."""
    for component, values in value.items():
        if not values:
            return f"{component}: expected a list of the values shown; found an empty one"
        bad = [v for v in values if not isinstance(v, str | int) or isinstance(v, bool)]
        if bad:
            return f"{component}: expected text or whole numbers; found {bad[0]!r}"
    return None


_SITE_GRID = re.compile(r"^(auto|\d+\s*x\s*\d+)$")


def check_site_grid(value: str) -> str | None:
    """A well's site layout: ``auto`` or rows x columns such as ``3x3``."""
    if _SITE_GRID.match(value.strip()) and not re.search(r"(^|x)\s*0+\s*(x|$)", value):
        return None
    return f"expected 'auto' or rows x columns such as '3x3'; found {value!r}"


@dataclass(frozen=True)
class TupleOf:
    """A sequence (TOML array) of ``item_type`` values, stored as a tuple."""

    item_type: Any


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_import_path(value: str) -> str | None:
    if _IMPORT_PATH.match(value):
        return None
    return f"expected an import path 'package.module:callable'; found {value!r}"


def check_name(value: str) -> str | None:
    if re.match(r"^[A-Za-z0-9_][\w\-]*$", value):
        return None
    return f"expected a name of letters, digits, '_' or '-'; found {value!r}"


def annotation(kind: Any, accepted: bool = False) -> str:
    """The type annotation of a field spec's type: as stored, or (``accepted``) as the
    constructor takes it - an enum field also takes its value's text, e.g. ``"viridis"``."""
    if isinstance(kind, MapOf):
        return f"Mapping[str, {annotation(kind.value_type, accepted)}]"
    if isinstance(kind, TupleOf):
        return f"tuple[{annotation(kind.item_type, accepted)}, ...]"
    if kind is Any:
        return "Any"
    if isinstance(kind, type) and issubclass(kind, Enum):
        return f"{kind.__name__} | str" if accepted else kind.__name__
    if isinstance(kind, type) and is_dataclass(kind):
        return kind.__name__
    if kind in (bool, int, float, str):
        return str(kind.__name__)
    raise TypeError(f"no annotation for field type {kind!r}")
