"""The resolved display config as it travels in a batch: plain JSON values, and back.

A batch carries the producer's fully resolved ``NapariStreamingConfig`` so the viewer lays
images out exactly as the producer's config says. On receipt the config class's own strict
constructor validates it, so the wire accepts exactly what a config file accepts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

from platestream.config import MapOf, NapariColormap, NapariStreamingConfig, check_port


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def display_to_wire(config: Any) -> dict[str, Any]:
    """Every field of a resolved NapariStreamingConfig as a JSON value (enums by value)."""
    if not config.is_resolved():
        raise ValueError("display_to_wire: resolve the config first (a field is unset)")
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def display_from_wire(values: Mapping[str, Any]) -> Any:
    """A NapariStreamingConfig from wire values; raises ConfigError on anything invalid.

    Every field must be present: the producer sends its resolved config, and filling gaps
    with the viewer's defaults would show images differently from what the producer asked.
    """
    config = NapariStreamingConfig(**dict(values))
    if not config.is_resolved():
        missing = [name for name in config.field_names() if name not in values]
        raise ValueError(f"display config: missing fields {missing}")
    return config


def _leaf_schema(kind: Any) -> dict[str, Any]:
    if kind is NapariColormap:
        # Open set: whatever colormaps the viewer's napari knows; the viewer checks it.
        return {"type": "string", "minLength": 1}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return {"type": "string", "enum": [m.value for m in kind]}
    if isinstance(kind, MapOf):
        return {"type": "object", "additionalProperties": _leaf_schema(kind.value_type)}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {"type": simple[kind]} if kind in simple else {}


def display_schema() -> dict[str, Any]:
    """JSON Schema of the ``display`` object of a batch (all fields required)."""
    properties: dict[str, Any] = {}
    for name, spec in NapariStreamingConfig.specs().items():
        schema = {"description": spec.doc, **_leaf_schema(spec.type)}
        if spec.check is check_port:
            schema.update(minimum=1024, maximum=64535)
        properties[name] = schema
    return {
        "type": "object",
        "description": "the producer's resolved NapariStreamingConfig, enums by value",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
