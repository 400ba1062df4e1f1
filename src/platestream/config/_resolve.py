"""Resolution through the inheritance chain: function -> step -> pipeline -> defaults.

``resolve`` is a pure function: layers in, a concrete frozen config and the origin of every
field out. The most specific layer that sets a field wins; nested configs resolve field by
field. The same function serves configs from TOML files and configs built in Python; a
layer only says where its values came from.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ._base import ConfigBase
from ._frozen import FrozenMap
from ._unset import UNSET

DEFAULT_ORIGIN = "default"


@dataclass(frozen=True)
class ConfigLayer:
    """One level of the chain: a (partial) config and where its values came from.

    ``source`` names the layer (``step 'blur' (Python)``, ``pipeline.toml``);
    ``locations`` maps a dotted field path to a finer origin (``pipeline.toml:12``).
    """

    config: Any
    source: str
    locations: Mapping[str, str] = field(default_factory=FrozenMap)

    @classmethod
    def python(cls, config: Any, level: str, name: str = "") -> ConfigLayer:
        label = f"{level} {name!r} (Python)" if name else f"{level} (Python)"
        return cls(config, label)

    def origin(self, path: str) -> str:
        return self.locations.get(path, self.source)


@dataclass(frozen=True)
class Resolved:
    """A fully resolved config and, per dotted field path, where its value came from."""

    value: Any
    origins: Mapping[str, str]

    def rows(self) -> list[tuple[str, Any, str]]:
        """(dotted path, value, origin) for every leaf field, in declaration order."""
        out: list[tuple[str, Any, str]] = []
        _leaf_rows(self.value, "", self.origins, out)
        return out


def _leaf_rows(config: Any, prefix: str, origins: Mapping[str, str], out: list[Any]) -> None:
    for name in config.field_names():
        value = getattr(config, name)
        path = f"{prefix}{name}"
        if isinstance(value, ConfigBase):
            _leaf_rows(value, f"{path}.", origins, out)
        else:
            out.append((path, value, origins[path]))


def _view(config: Any, cls: type[Any], prefix: str = "") -> tuple[Any, str]:
    """The part of a layer's config that is a ``cls`` (itself or a nested field) and its path."""
    if isinstance(config, cls):
        return config, prefix
    if isinstance(config, ConfigBase):
        for name, value in config.set_fields():
            if isinstance(value, ConfigBase):
                found, path = _view(value, cls, f"{prefix}{name}.")
                if found is not UNSET:
                    return found, path
    return UNSET, prefix


@dataclass(frozen=True)
class _View:
    config: Any
    layer: ConfigLayer
    prefix: str  # where ``config`` sits inside ``layer.config``, for finer locations


def _resolve_into(
    cls: type[Any], views: Sequence[_View], prefix: str, origins: dict[str, str]
) -> Any:
    values: dict[str, Any] = {}
    for name, spec in cls.specs().items():
        path = f"{prefix}{name}"
        if isinstance(spec.type, type) and issubclass(spec.type, ConfigBase):
            nested = [
                _View(getattr(v.config, name), v.layer, v.prefix)
                for v in views
                if getattr(v.config, name) is not UNSET
            ]
            values[name] = _resolve_into(spec.type, nested, f"{path}.", origins)
            continue
        for view in views:
            value = getattr(view.config, name)
            if value is not UNSET:
                values[name] = value
                origins[path] = view.layer.origin(f"{view.prefix}{path}")
                break
        else:
            values[name] = spec.default
            origins[path] = DEFAULT_ORIGIN
    return cls(**values)


def resolve(cls: type[Any], layers: Sequence[ConfigLayer]) -> Resolved:
    """Resolve ``cls`` through ``layers``, most specific first, then the global defaults.

    A layer may hold a ``cls`` or any config with a nested ``cls`` field (a PipelineConfig
    layer serves when resolving its NapariStreamingConfig).
    """
    views = []
    for layer in layers:
        config, prefix = _view(layer.config, cls)
        if config is not UNSET:
            views.append(_View(config, layer, prefix))
    origins: dict[str, str] = {}
    value = _resolve_into(cls, views, "", origins)
    return Resolved(value, FrozenMap(origins))


# Convenience: a chain built up with ``with`` blocks. The pure ``resolve`` is the core.
_CHAIN: contextvars.ContextVar[tuple[ConfigLayer, ...]] = contextvars.ContextVar(
    "platestream_config_chain", default=()
)


@contextlib.contextmanager
def config_context(config: Any, source: str = "context") -> Iterator[None]:
    """Push ``config`` as a more specific layer for ``resolve_current`` and placeholders."""
    layer = config if isinstance(config, ConfigLayer) else ConfigLayer(config, source)
    token = _CHAIN.set((layer, *_CHAIN.get()))
    try:
        yield
    finally:
        _CHAIN.reset(token)


def current_chain() -> tuple[ConfigLayer, ...]:
    return _CHAIN.get()


def resolve_current(config: Any) -> Resolved:
    """Resolve ``config`` (the most specific layer) over the active ``config_context`` chain."""
    layers = (ConfigLayer(config, "this config"), *current_chain())
    return resolve(type(config), layers)


def placeholder(cls: type[Any], name: str) -> str:
    """How an unset field prints: ``<unset: 5555 from default>``, using the active chain."""
    resolved = resolve(cls, current_chain())
    value = getattr(resolved.value, name)
    if isinstance(value, ConfigBase):
        return f"<unset: {type(value).__name__}(...)>"
    origin = resolved.origins.get(name, DEFAULT_ORIGIN)
    shown = value.value if isinstance(value, Enum) else value
    return f"<unset: {shown!r} from {origin}>"


def config_repr(config: Any) -> str:
    """The repr of every config class: unset fields show what they resolve to, and where
    from, in the active chain (``port=<unset: 5555 from default>``)."""
    parts = []
    for name in config.field_names():
        value = getattr(config, name)
        shown = placeholder(type(config), name) if value is UNSET else repr(value)
        parts.append(f"{name}={shown}")
    return f"{type(config).__name__}({', '.join(parts)})"
