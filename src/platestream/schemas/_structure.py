"""Validate JSON values into wire dataclasses on receipt, and turn dataclasses back into JSON.

Strict by design: no unknown keys, no '5' for 5, no true for 1, bounded lengths, every
pattern and range of the field's metadata. The JSON Schemas are generated from the same
types and metadata (``jsonschema_gen``), and a test checks both reject the same junk.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin

from platestream.config import FrozenMap

from ._wire import PROTOCOL_VERSION, DropReason, Message, message_types
from ._wire_fields import INT_MAX, INT_MIN, has_default

T = TypeVar("T")
DISCRIMINATOR = "where"


class WireError(ValueError):
    """A message failed to decode or validate; ``reason`` is how the drop is counted."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


Converter = Callable[[Any], Any]
_PLAIN = frozenset({int, float, str, bool, type(None)})


class _Invalid(Exception):
    """Internal: a value failed; ``path`` is filled in on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message[:300]
        self.path: list[str] = []


def _limits(meta: Mapping[str, Any]) -> Callable[[Any], None] | None:
    """A check of the field's minimum/maximum/max_length/pattern, or None if it has none."""
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    max_length, pattern = meta.get("max_length"), meta.get("pattern")
    if minimum is None and maximum is None and max_length is None and pattern is None:
        return None
    compiled = re.compile(pattern) if pattern is not None else None

    def check(value: Any) -> None:
        if minimum is not None and value < minimum:
            raise _Invalid(f"expected at least {minimum}; found {value!r}")
        if maximum is not None and value > maximum:
            raise _Invalid(f"expected at most {maximum}; found {value!r}")
        if max_length is not None and len(value) > max_length:
            raise _Invalid(f"expected at most {max_length} entries; found {len(value)}")
        if compiled is not None and not compiled.search(value):
            raise _Invalid(f"expected a string matching {pattern}; found {value!r}")

    return check


def _scalar(kind: type[Any]) -> Converter:
    accepted: tuple[type[Any], ...] = (int, float) if kind is float else (kind,)

    def of_type(value: Any) -> Any:
        # json.loads makes exactly these types: the common case is one type() test.
        if type(value) is kind:
            if kind is float and not math.isfinite(value):
                raise _Invalid(f"expected a finite number; found {value!r}")
            if kind is int and not INT_MIN <= value <= INT_MAX:
                raise _Invalid(f"expected an integer that fits 64 bits; found {str(value)[:24]}...")
            return value
        # bool is an int in Python but not in JSON: reject it where a number is wanted.
        if isinstance(value, accepted) and not (kind is not bool and isinstance(value, bool)):
            if kind is float:
                if not math.isfinite(value):
                    raise _Invalid(f"expected a finite number; found {value!r}")
                return float(value)
            return value
        raise _Invalid(f"expected {kind.__name__}; found {type(value).__name__} {value!r}")

    return of_type


def _enum(kind: type[Enum]) -> Converter:
    by_value = {member.value: member for member in kind}

    def member(value: Any) -> Any:
        if isinstance(value, str) and value in by_value:
            return by_value[value]
        raise _Invalid(f"expected one of {list(by_value)}; found {value!r}")

    return member


def _array(item: Converter, limit: Callable[[Any], None] | None) -> Converter:
    def array(value: Any) -> Any:
        if type(value) is not list:
            raise _Invalid(f"expected an array; found {type(value).__name__}")
        if limit is not None:
            limit(value)
        out = []
        for index, entry in enumerate(value):
            try:
                out.append(item(entry))
            except _Invalid as err:
                err.path.insert(0, f"[{index}]")
                raise
        return tuple(out)

    return array


def _object(item: Converter, limit: Callable[[Any], None] | None) -> Converter:
    def mapping(value: Any) -> Any:
        if type(value) is not dict:
            raise _Invalid(f"expected an object; found {type(value).__name__}")
        if limit is not None:
            limit(value)
        out = {}
        for key, entry in value.items():
            try:
                out[key] = item(entry)
            except _Invalid as err:
                err.path.insert(0, str(key))
                raise
        return FrozenMap(out)

    return mapping


def _union(args: tuple[Any, ...]) -> Converter:
    if all(dataclasses.is_dataclass(a) for a in args):
        by_tag = {a.WHERE: _dataclass(a) for a in args}

        def tagged(value: Any) -> Any:
            if type(value) is not dict:
                raise _Invalid(f"expected an object; found {type(value).__name__}")
            convert = by_tag.get(value.get(DISCRIMINATOR))
            if convert is None:
                raise _Invalid(f"{DISCRIMINATOR!r} must be one of {list(by_tag)}")
            return convert(value)

        return tagged
    alternatives = [_converter(a, {}) for a in args]
    # A value of exactly one of the alternatives' scalar types goes straight to it (no
    # failed attempts first); anything else tries each alternative in order.
    by_type = {a: c for a, c in zip(args, alternatives, strict=True) if a in _PLAIN}

    def first_that_fits(value: Any) -> Any:
        direct = by_type.get(type(value))
        if direct is not None:
            return direct(value)
        for convert in alternatives:
            try:
                return convert(value)
            except _Invalid:
                continue
        raise _Invalid(f"no alternative of {args} accepts {value!r}")

    return first_that_fits


def _converter(kind: Any, meta: Mapping[str, Any]) -> Converter:
    """A function validating a JSON value as ``kind`` (with the field's limits)."""
    origin, limit = get_origin(kind), _limits(meta)
    if origin is tuple:
        (item,) = (a for a in get_args(kind) if a is not Ellipsis)
        return _array(_converter(item, {"minimum": meta.get("items_minimum")}), limit)
    if origin is Mapping:
        return _object(_converter(get_args(kind)[1], {}), limit)
    if kind is Any:
        return lambda value: value  # already a JSON value: it came out of json.loads
    if origin in (typing.Union, types.UnionType):
        base = _union(get_args(kind))
    elif dataclasses.is_dataclass(kind):
        base = _dataclass(typing.cast(type[Any], kind))
    elif isinstance(kind, type) and issubclass(kind, Enum):
        base = _enum(kind)
    else:
        base = _scalar(kind)
    if limit is None:
        return base

    def limited(value: Any) -> Any:
        result = base(value)
        limit(result)
        return result

    return limited


_DATACLASS_CONVERTERS: dict[type[Any], Converter] = {}


def _dataclass(cls: type[Any]) -> Converter:
    """The (cached) converter of a wire dataclass."""
    if cls not in _DATACLASS_CONVERTERS:
        _DATACLASS_CONVERTERS[cls] = _compile_dataclass(cls)
    return _DATACLASS_CONVERTERS[cls]


def _compile_dataclass(cls: type[Any]) -> Converter:
    hints = typing.get_type_hints(cls)
    fields = [
        (f.name, _converter(hints[f.name], f.metadata), not has_default(f))
        for f in dataclasses.fields(cls)
    ]
    known = frozenset(name for name, _, _ in fields) | (
        {DISCRIMINATOR} if getattr(cls, "WHERE", None) else set()
    )

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _Invalid(f"expected an object; found {type(value).__name__}")
        if not known.issuperset(value):
            raise _Invalid(f"unknown fields {sorted(set(value) - known)[:5]}")
        kwargs = {}
        for name, field_converter, required in fields:
            if name in value:
                try:
                    kwargs[name] = field_converter(value[name])
                except _Invalid as err:
                    err.path.insert(0, name)
                    raise
            elif required:
                raise _Invalid(f"missing field {name!r}")
        return cls(**kwargs)

    return convert


def structure(cls: type[T], value: Any) -> T:
    """Validate a JSON object into ``cls``; raises WireError(BAD_SCHEMA) saying where."""
    try:
        result: T = _dataclass(cls)(value)
    except _Invalid as err:
        where = ".".join(err.path).replace(".[", "[") or "<message>"
        raise WireError(DropReason.BAD_SCHEMA, f"{where}: {err.message}") from None
    return result


_FIELD_NAMES: dict[type[Any], tuple[tuple[str, ...], str | None]] = {}


def _field_names(cls: type[Any]) -> tuple[tuple[str, ...], str | None]:
    """A wire dataclass's field names and its union tag (``WHERE``), if any."""
    if cls not in _FIELD_NAMES:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = (names, getattr(cls, "WHERE", None))
    return _FIELD_NAMES[cls]


def unstructure(value: Any) -> Any:
    """A wire dataclass (or a value inside one) as plain JSON values."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    known = _FIELD_NAMES.get(kind)  # the wire dataclasses seen before
    if known is None:
        if isinstance(value, Enum):
            return value.value
        if kind is dict or kind is FrozenMap:
            return {str(k): unstructure(v) for k, v in value.items()}
        if kind is tuple or kind is list:
            return [unstructure(v) for v in value]
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            if isinstance(value, Mapping):
                return {str(k): unstructure(v) for k, v in value.items()}
            if isinstance(value, tuple | list):
                return [unstructure(v) for v in value]
            return value
        known = _field_names(kind)
    names, where = known
    out = {f: unstructure(getattr(value, f)) for f in names}
    return {DISCRIMINATOR: where, **out} if where else out


# ------------------------------------------------------------------ message envelope


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def encode_message(message: Message) -> bytes:
    """The JSON header frame of ``message``: ``type``, ``v`` and its fields."""
    body = {"type": message.TYPE, "v": PROTOCOL_VERSION, **unstructure(message)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# A \\uD800-\\uDFFF escape: JSON may spell a lone UTF-16 surrogate so, and such text cannot
# be encoded again (as a reply, a layer name, a log line). Only then is the whole value checked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(data: bytes) -> dict[str, Any]:
    """A JSON object from bytes; WireError(BAD_FRAME) for anything else, including text that
    is not valid Unicode (a lone surrogate escape)."""
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
        if _SURROGATE_ESCAPE.search(data):
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise WireError(DropReason.BAD_FRAME, "text that is not valid Unicode") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise WireError(DropReason.BAD_FRAME, f"not a JSON header: {err}"[:300]) from None
    if not isinstance(value, dict):
        raise WireError(DropReason.BAD_FRAME, f"header is a JSON {type(value).__name__}")
    return value


def decode_message(data: bytes, port: str | None = None) -> Message:
    """Decode and validate one header frame; ``port`` rejects messages of another port."""
    value = parse_json(data)
    version = value.pop("v", None)
    if not isinstance(version, int) or isinstance(version, bool):
        raise WireError(DropReason.BAD_SCHEMA, "missing or non-integer protocol version 'v'")
    if version != PROTOCOL_VERSION:
        raise WireError(DropReason.BAD_VERSION, f"protocol {version}, expected {PROTOCOL_VERSION}")
    kind = value.pop("type", None)
    cls = message_types().get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(DropReason.BAD_SCHEMA, f"unknown message type {kind!r}"[:200])
    if port is not None and port != cls.PORT:
        raise WireError(DropReason.UNEXPECTED, f"a {kind!r} message does not belong here")
    return structure(cls, value)
