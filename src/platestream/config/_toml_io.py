"""Pipeline config files: strict TOML loading with every error at once, and dumping.

Loading is tomllib + cattrs. Each field is structured by its FieldSpec's strict check, so
"5" never becomes 5 and "false" never becomes True. cattrs collects the problems of the
whole document; each is reported as ``file:line:col: dotted.path: expected ..., found ...``
with a did-you-mean for unknown keys.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import cattrs
import tomli_w
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from ._base import ConfigBase
from ._errors import ConfigFileError, ConfigIssue
from ._factory import ConfigClasses
from ._field_specs import FieldError, FieldSpec, TupleOf, check_field, suggest
from ._frozen import FrozenMap, thaw
from ._toml_locate import Position, key_positions, locate
from ._unset import UNSET

SCHEMA_FILE_NAME = "platestream-pipeline.schema.json"


def _is_config(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, ConfigBase)


def _table(converter: cattrs.Converter, cls: type[Any], value: Any, _: Any) -> Any:
    if not isinstance(value, Mapping):
        raise FieldError(f"expected a table; found {type(value).__name__} {value!r}")
    return converter.structure(value, cls)


def _array_of_tables(converter: cattrs.Converter, cls: type[Any], value: Any, _: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise FieldError(f"expected an array of tables; found {type(value).__name__} {value!r}")
    return converter.structure(value, tuple[cls, ...])  # type: ignore[valid-type]


def _leaf(spec: FieldSpec, value: Any, _: Any) -> Any:
    return check_field(spec, value)


def make_converter() -> cattrs.Converter:
    """A cattrs converter that structures any generated config class strictly."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def hook_for(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {}
        for name, spec in cls.specs().items():
            if _is_config(spec.type):
                hook = partial(_table, converter, spec.type)
            elif isinstance(spec.type, TupleOf) and _is_config(spec.type.item_type):
                hook = partial(_array_of_tables, converter, spec.type.item_type)
            else:
                hook = partial(_leaf, spec)
            overrides[name] = override(struct_hook=hook)
        return make_dict_structure_fn(cls, converter, **overrides)

    converter.register_structure_hook_factory(_is_config, hook_for)
    return converter


def _nested_hint(cls: type[Any], key: str) -> str:
    """' (did you mean napari_streaming.colormap?)' for a key given one table too high."""
    for name, spec in cls.specs().items():
        if _is_config(spec.type):
            close = suggest(key, spec.type.field_names())
            if close:
                return close.replace("'", "", 2).replace("mean ", f"mean {name}.", 1)
    return ""


def _unknown_key(exc: ForbiddenExtraKeysError, path: str) -> Iterator[tuple[str, str]]:
    cls: Any = exc.cl
    allowed = cls.field_names() if _is_config(cls) else ()
    for key in sorted(exc.extra_fields):
        hint = suggest(key, allowed) or (_nested_hint(cls, key) if allowed else "")
        listing = f"; allowed keys: {', '.join(allowed)}" if not hint and allowed else ""
        yield (f"{path}.{key}".lstrip("."), f"unknown key {key!r}{hint}{listing}")


def _walk(exc: BaseException, path: str) -> Iterator[tuple[str, str]]:
    """Flatten cattrs' exception tree into (dotted path, message) pairs."""
    if isinstance(exc, ClassValidationError):
        with_notes, others = exc.group_exceptions()
        for sub, note in with_notes:
            yield from _walk(sub, f"{path}.{note.name}")
        for sub in others:
            yield from _walk(sub, path)
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            notes = [
                n for n in getattr(sub, "__notes__", []) if isinstance(n, IterableValidationNote)
            ]
            yield from _walk(sub, f"{path}[{notes[0].index}]" if notes else path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        yield from _unknown_key(exc, path)
    elif isinstance(exc, KeyError):
        yield (path.lstrip("."), f"missing required key {exc.args[0]!r}")
    elif isinstance(exc, FieldError):
        yield (f"{path}{exc.subpath}".lstrip("."), str(exc.args[0]))
    else:
        yield (path.lstrip("."), str(exc))


_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _syntax_issue(err: tomllib.TOMLDecodeError, file: str) -> ConfigIssue:
    text = str(err)
    match = _SYNTAX_AT.search(text)
    line, col = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return ConfigIssue("", f"TOML syntax error: {_SYNTAX_AT.sub('', text)}", file, line, col)


class LoadedPipeline:
    """A loaded pipeline file, with positions for provenance."""

    def __init__(self, spec: Any, file: str, positions: Mapping[str, Position]) -> None:
        self.spec = spec
        self.file = file
        self.positions = positions

    def origin(self, toml_path: str) -> str:
        line, _ = locate(dict(self.positions), toml_path)
        return f"{self.file}:{line}" if line else self.file


def _duplicate_steps(spec: Any) -> Iterator[tuple[str, str]]:
    seen: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.name in seen:
            yield (
                f"steps[{index}].name",
                f"step name {step.name!r} is already used by "
                f"steps[{seen[step.name]}]; step names must be unique",
            )
        seen.setdefault(step.name, index)


def loads_pipeline(text: str, classes: ConfigClasses, file: str = "<string>") -> LoadedPipeline:
    """Parse and check a pipeline file's text; raises ConfigFileError with every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigFileError([_syntax_issue(err, file)]) from None
    positions = key_positions(text)
    converter = make_converter()
    problems: list[tuple[str, str]] = []
    spec = None
    try:
        spec = converter.structure(data, classes.pipeline_file)
    except (ClassValidationError, IterableValidationError) as err:
        problems.extend(_walk(err, ""))
    if spec is not None:
        problems.extend(_duplicate_steps(spec))
    if problems:
        issues = []
        for path, message in problems:
            line, col = locate(positions, path)
            issues.append(ConfigIssue(path, message, file, line, col))
        raise ConfigFileError(sorted(issues, key=lambda i: (i.line, i.column, i.path)))
    return LoadedPipeline(spec, file, positions)


def load_pipeline(path: str | Path, classes: ConfigClasses) -> LoadedPipeline:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(
            [ConfigIssue("", f"cannot read the file: {err}", str(path))]
        ) from None
    return loads_pipeline(text, classes, str(path))


def unstructure(value: Any) -> Any:
    """A config/spec value as plain TOML data; unset fields are left out."""
    if isinstance(value, ConfigBase):
        return {name: unstructure(v) for name, v in value.set_fields()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, FrozenMap | Mapping):
        return {k: unstructure(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [unstructure(v) for v in value]
    return thaw(value)


def dumps_pipeline(spec: Any, schema_ref: str | None = None) -> str:
    """TOML text for a PipelineFile; ``loads_pipeline(dumps_pipeline(x)) == x``."""
    body = tomli_w.dumps(unstructure(spec))
    header = f"#:schema {schema_ref}\n" if schema_ref else ""
    return header + body


__all__ = [
    "SCHEMA_FILE_NAME",
    "UNSET",
    "LoadedPipeline",
    "dumps_pipeline",
    "load_pipeline",
    "loads_pipeline",
    "make_converter",
    "unstructure",
]
