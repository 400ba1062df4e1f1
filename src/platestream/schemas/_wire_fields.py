"""How a wire-message field is declared: its documentation and its limits, in one place.

The same metadata drives the runtime validator (``structure``), the committed JSON Schemas
and the field tables checked against ``docs/protocol.md``, so the three cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

#: Every integer on the wire fits an int64 (a 4,000-digit number never becomes a counter).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: Upper bounds that keep a hostile header from costing much to validate.
MAX_ITEMS = 4096
MAX_DIMS = 32
MAX_NAME = 256
MAX_TEXT = 4096


def wire_field(
    doc: str,
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    schema: Mapping[str, Any] | None = None,
    items_minimum: float | None = None,
) -> Any:
    """A dataclass field with the documentation and limits of one wire field.

    ``max_length`` bounds strings, arrays and objects alike; ``items_minimum`` bounds the
    numbers of an array; ``schema`` replaces the generated JSON Schema of the field (its
    runtime check is then done by the consumer). Every integer is an int64 besides.
    """
    metadata = {
        "doc": doc,
        "minimum": minimum,
        "maximum": maximum,
        "max_length": max_length,
        "pattern": pattern,
        "schema": schema,
        "items_minimum": items_minimum,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_doc(field: dataclasses.Field[Any]) -> str:
    doc: str = field.metadata.get("doc", "")
    return doc


def has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not MISSING or field.default_factory is not MISSING
