"""Behaviour shared by every generated config class: strict construction and a helpful repr."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from ._errors import ConfigError
from ._field_specs import FieldError, FieldSpec, check_field, suggest
from ._field_specs import annotation as annotation_of
from ._unset import UNSET


class UnknownFieldError(ConfigError, TypeError):
    """A config was given a field it does not have."""


class ConfigBase:
    """Mixin of the generated frozen dataclasses. Fields default to UNSET (inherit)."""

    __specs__: ClassVar[dict[str, FieldSpec]] = {}

    @classmethod
    def specs(cls) -> dict[str, FieldSpec]:
        return cls.__specs__

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        problems = []
        for name, spec in self.specs().items():
            value = getattr(self, name)
            if value is UNSET:
                continue
            try:
                checked = check_field(spec, value)
            except FieldError as err:
                problems.append(f"{type(self).__name__}.{name}: {err}")
                continue
            if checked is not value:
                object.__setattr__(self, name, checked)  # e.g. "viridis" -> the enum member
        if problems:
            raise ConfigError("\n".join(problems))

    def set_fields(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of the fields this layer sets, in declaration order."""
        for name in self.field_names():
            value = getattr(self, name)
            if value is not UNSET:
                yield name, value

    def is_resolved(self) -> bool:
        """True when no field, nested ones included, is UNSET."""
        for name in self.field_names():
            value = getattr(self, name)
            if value is UNSET:
                return False
            if isinstance(value, ConfigBase) and not value.is_resolved():
                return False
        return True


def strict_init(cls: type[Any]) -> None:
    """Wrap the dataclass __init__: keyword arguments only, unknown names get a did-you-mean."""
    original: Callable[..., None] = cls.__init__
    names = tuple(f.name for f in dataclasses.fields(cls))

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            raise UnknownFieldError(f"{cls.__name__} takes keyword arguments only")
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            lines = [
                f"{cls.__name__} has no field {key!r}{suggest(key, names)}; "
                f"fields: {', '.join(names)}"
                for key in unknown
            ]
            raise UnknownFieldError("\n".join(lines))
        original(self, **kwargs)

    __init__.__doc__ = original.__doc__
    # Tools (IPython, IDEs, help()) show the fields, not (*args, **kwargs).
    signature = _signature(cls)
    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *signature.parameters.values(),
        ]
    )
    cls.__init__ = __init__
    cls.__signature__ = signature


def _signature(cls: type[Any]) -> inspect.Signature:
    """Keyword-only parameters, one per field, with its default (UNSET: inherit)."""
    specs = getattr(cls, "__specs__", {})
    parameters = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = inspect.Parameter.empty
        spec = specs.get(field.name)
        annotation = annotation_of(spec.type, True) if spec is not None else inspect.Parameter.empty
        parameters.append(
            inspect.Parameter(
                field.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return inspect.Signature(parameters, return_annotation=None)
