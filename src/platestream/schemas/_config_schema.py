"""The JSON Schema of pipeline config files, generated from the config classes.

The committed copy (``json/pipeline-file.schema.json``) is what editors use; a test
regenerates it and compares, so it can never drift from the classes.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from platestream.config import (
    CLASSES,
    UNSET,
    ConfigBase,
    ConfigClasses,
    FieldSpec,
    FrozenMap,
    MapOf,
    TupleOf,
    check_port,
    unstructure,
)

SCHEMA_PATH = Path(__file__).parent / "json" / "pipeline-file.schema.json"
SCHEMA_ID = "https://platestream.invalid/schemas/pipeline-file.schema.json"


def _leaf_schema(kind: Any) -> dict[str, Any]:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return {"type": "string", "enum": [m.value for m in kind]}
    if isinstance(kind, MapOf):
        return {"type": "object", "additionalProperties": _leaf_schema(kind.value_type)}
    if isinstance(kind, TupleOf):
        return {"type": "array", "items": _leaf_schema(kind.item_type)}
    if isinstance(kind, type) and issubclass(kind, ConfigBase):
        return {"$ref": f"#/$defs/{kind.__name__}"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if kind in simple:
        return {"type": simple[kind]}
    return {}  # any TOML value


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    schema = {"description": spec.doc, **_leaf_schema(spec.type)}
    if (
        spec.default is not UNSET
        and spec.default is not None
        and not isinstance(spec.default, type)
    ):
        default = unstructure(spec.default)
        if default != {} or isinstance(spec.default, FrozenMap):
            schema["default"] = default
    if spec.check is check_port:
        schema.update(minimum=1024, maximum=64535)
    return schema


def _class_schema(cls: type[Any], required: set[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip(),
        "properties": {name: _field_schema(spec) for name, spec in cls.specs().items()},
        "additionalProperties": False,
    }
    needed = [name for name in cls.field_names() if name in required]
    if needed:
        schema["required"] = needed
    return schema


def _required(cls: type[Any]) -> set[str]:
    import dataclasses

    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def pipeline_file_schema(classes: ConfigClasses = CLASSES) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pipeline TOML file."""
    defs = {}
    for cls in (
        classes.pipeline_spec,
        classes.step_spec,
        classes.function_spec,
        classes.napari_streaming,
    ):
        defs[cls.__name__] = _class_schema(cls, _required(cls))
    top = _class_schema(classes.pipeline_file, set())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "platestream pipeline file",
        **top,
        "$defs": defs,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_committed_schema() -> Path:
    """Regenerate the committed schema file (run after changing the config classes)."""
    SCHEMA_PATH.write_text(render(pipeline_file_schema()), encoding="utf-8")
    return SCHEMA_PATH
