"""Generate the committed JSON Schemas: the wire messages (``json/wire-<type>.schema.json``)
and the pipeline file (``json/pipeline-file.schema.json``).

They come from the same dataclasses and field metadata as the runtime validator and the
config classes. Tests regenerate them and compare with the committed files; after changing
a message or a config field, run ``python -m platestream.schemas.jsonschema_gen``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from . import _replies  # noqa: F401  (registers the reply messages)
from ._config_schema import write_committed_schema
from ._structure import DISCRIMINATOR, unstructure
from ._wire import PROTOCOL_VERSION, Message, message_types
from ._wire_fields import INT_MAX, INT_MIN, field_doc, has_default

SCHEMA_DIR = Path(__file__).parent / "json"
SCHEMA_BASE = "https://platestream.invalid/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SIMPLE = {bool: "boolean", int: "integer", float: "number", str: "string"}


def schema_filename(message_type: str) -> str:
    return f"wire-{message_type.replace('_', '-')}.schema.json"


def _limits(schema: dict[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    for key, target in (("minimum", "minimum"), ("maximum", "maximum"), ("pattern", "pattern")):
        if meta.get(key) is not None:
            schema[target] = meta[key]
    if meta.get("max_length") is not None:
        name = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}
        kind = schema.get("type")
        if isinstance(kind, str) and kind in name:
            schema[name[kind]] = meta["max_length"]
    return schema


def _type_schema(kind: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(kind)
    if kind is Any:
        return {}
    if kind is int:
        return {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}
    if kind in _SIMPLE:
        return {"type": _SIMPLE[kind]}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return {"type": "string", "enum": [m.value for m in kind]}
    if origin is tuple:
        (item,) = (a for a in get_args(kind) if a is not Ellipsis)
        return {"type": "array", "items": _type_schema(item, defs)}
    if origin is Mapping:
        return {"type": "object", "additionalProperties": _type_schema(get_args(kind)[1], defs)}
    if origin in (typing.Union, types.UnionType):
        args = get_args(kind)
        if all(a in _SIMPLE for a in args):
            schema: dict[str, Any] = {"type": [_SIMPLE[a] for a in args]}
            if int in args and float not in args:  # bounds apply to numbers only
                schema.update(minimum=INT_MIN, maximum=INT_MAX)
            return schema
        return {"oneOf": [_type_schema(a, defs) for a in args]}
    if dataclasses.is_dataclass(kind):
        cls = typing.cast(type[Any], kind)
        if cls.__name__ not in defs:
            defs[cls.__name__] = {}  # reserve the name first: recursion stops here
            defs[cls.__name__] = _object_schema(cls, defs)
        return {"$ref": f"#/$defs/{cls.__name__}"}
    raise TypeError(f"no JSON Schema for {kind!r}")


def _field_schema(field: dataclasses.Field[Any], kind: Any, defs: dict[str, Any]) -> Any:
    override = field.metadata.get("schema")
    schema = dict(override) if override is not None else _type_schema(kind, defs)
    schema = {"description": field_doc(field), **_limits(schema, field.metadata)}
    if field.metadata.get("items_minimum") is not None and "items" in schema:
        schema["items"] = {**schema["items"], "minimum": field.metadata["items_minimum"]}
    if field.default is not dataclasses.MISSING:
        schema["default"] = unstructure(field.default)
    elif field.default_factory is not dataclasses.MISSING:
        schema["default"] = unstructure(field.default_factory())
    return schema


def _object_schema(
    cls: type[Any], defs: dict[str, Any], head: Mapping[str, Any] | None = None
) -> Any:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = dict(head or {})
    required = list(properties)
    where = getattr(cls, "WHERE", None)
    if where:
        properties[DISCRIMINATOR] = {"description": "which kind of location", "const": where}
        required.append(DISCRIMINATOR)
    for field in dataclasses.fields(cls):
        properties[field.name] = _field_schema(field, hints[field.name], defs)
        if not has_default(field):
            required.append(field.name)
    return {
        "type": "object",
        "description": " ".join((cls.__doc__ or "").split()),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def message_schema(cls: type[Message]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one message's header frame."""
    defs: dict[str, Any] = {}
    head = {
        "type": {"description": "the message type", "const": cls.TYPE},
        "v": {"description": "the protocol version", "const": PROTOCOL_VERSION},
    }
    body = _object_schema(cls, defs, head)
    where = "data port" if cls.PORT == "data" else f"control {cls.PORT}"
    schema = {
        "$schema": DRAFT,
        "$id": SCHEMA_BASE + schema_filename(cls.TYPE),
        "title": f"platestream wire message {cls.TYPE!r} (protocol v{PROTOCOL_VERSION}, {where})",
        **body,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every message's schema by its committed file name."""
    return {schema_filename(t): message_schema(c) for t, c in message_types().items()}


def render(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate the committed wire schemas; removes stale ``wire-*`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    fresh = all_schemas()
    for stale in directory.glob("wire-*.schema.json"):
        if stale.name not in fresh:
            stale.unlink()
    written = []
    for name, schema in fresh.items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas():
        print(written_path)
    print(write_committed_schema())
