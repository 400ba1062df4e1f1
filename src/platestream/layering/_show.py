"""Showing part of a stream: ``well=A01,A02`` and ``channel=DAPI`` as a filter of items.

A filter maps a component to the values shown (as text; wells in their usual form, so
``a1`` and ``A01`` are one well). An item is shown when every filtered component has one
of its values; ``step`` matches the step's name or its index. The empty filter shows
everything. Pure functions: the viewer announces its filter in the handshake and the
producer applies it before copying anything; a pipeline's config can restrict a step the
same way (``show`` in ``[pipeline.napari_streaming]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from platestream.config import ConfigError, normalize_well

Show = Mapping[str, tuple[str, ...]]
STEP = "step"


def _text(component: str, value: Any) -> str:
    if component == "well":
        try:
            return normalize_well(value)
        except ConfigError:
            return str(value)
    return str(value)


def parse_show(specs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["well=A01,A02", "channel=DAPI"]`` -> ``{"well": ("A01", "A02"), ...}``; the same
    component twice: both lists. A ValueError names the spec and what was expected."""
    show: dict[str, dict[str, None]] = {}
    for spec in specs:
        component, sep, values = spec.partition("=")
        component = component.strip()
        found = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not component or not found:
            raise ValueError(
                f"--show {spec!r}: expected component=value[,value...], e.g. well=A01,A02"
            )
        chosen = show.setdefault(component, {})
        chosen.update(dict.fromkeys(_text(component, v) for v in found))
    return {component: tuple(values) for component, values in show.items()}


def checked_show(show: Mapping[str, Iterable[Any]]) -> dict[str, tuple[str, ...]]:
    """A filter given as a mapping (Python, TOML), in the form ``shows`` reads."""
    checked = {}
    for component, values in show.items():
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ValueError(f"show[{component!r}]: expected a list of values, found {values!r}")
        checked[str(component)] = tuple(dict.fromkeys(_text(str(component), v) for v in values))
    return checked


def shows(show: Show, components: Mapping[str, Any], step_index: int, step_name: str) -> bool:
    """Whether an item with these components (of that step) passes ``show``."""
    for component, allowed in show.items():
        if component == STEP:
            if step_name not in allowed and str(step_index) not in allowed:
                return False
            continue
        value = components.get(component)
        if value is None or _text(component, value) not in allowed:
            return False
    return True


def describe_show(show: Show) -> str:
    """``well=A01,A02 channel=DAPI`` (empty: everything)."""
    return " ".join(f"{c}={','.join(v)}" for c, v in show.items()) or "everything"
