"""The configuration framework: frozen config classes generated from the component registry,
the UNSET placeholder, resolution through the inheritance chain with provenance, and TOML.

Importing this package imports no Qt (only ``napari.utils.colormaps``, for the colormap enum).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from .components import DEFAULT_REGISTRY, Component, ComponentRegistry, DimensionMode, natural_key
from .enums import (
    DeliveryMode,
    NapariColormap,
    NapariDimensionMode,
    NapariVariableSizeHandling,
    OutputKind,
    Transport,
)
from .errors import ConfigError, ConfigFileError, ConfigIssue
from .factory import ConfigClasses, make_config_classes
from .frozen import FrozenMap
from .resolve import (
    ConfigLayer,
    Resolved,
    config_context,
    current_chain,
    resolve,
    resolve_current,
)
from .unset import UNSET, Unset, is_unset

CLASSES: ConfigClasses = make_config_classes(DEFAULT_REGISTRY)

# The generated classes are dynamic, so to a type checker they are Any.
if TYPE_CHECKING:
    StreamingConfig: TypeAlias = Any
    NapariDisplayConfig: TypeAlias = Any
    NapariStreamingConfig: TypeAlias = Any
    PipelineConfig: TypeAlias = Any
    FunctionSpec: TypeAlias = Any
    StepSpec: TypeAlias = Any
    PipelineSpec: TypeAlias = Any
    PipelineFile: TypeAlias = Any
else:
    StreamingConfig = CLASSES.streaming
    NapariDisplayConfig = CLASSES.display
    NapariStreamingConfig = CLASSES.napari_streaming
    PipelineConfig = CLASSES.pipeline
    FunctionSpec = CLASSES.function_spec
    StepSpec = CLASSES.step_spec
    PipelineSpec = CLASSES.pipeline_spec
    PipelineFile = CLASSES.pipeline_file


def default_display() -> Any:
    """The NapariStreamingConfig with every field at its global default."""
    return resolve(NapariStreamingConfig, []).value


__all__ = [
    "CLASSES",
    "DEFAULT_REGISTRY",
    "UNSET",
    "Component",
    "ComponentRegistry",
    "ConfigClasses",
    "ConfigError",
    "ConfigFileError",
    "ConfigIssue",
    "ConfigLayer",
    "DeliveryMode",
    "DimensionMode",
    "FrozenMap",
    "FunctionSpec",
    "NapariColormap",
    "NapariDimensionMode",
    "NapariDisplayConfig",
    "NapariStreamingConfig",
    "NapariVariableSizeHandling",
    "OutputKind",
    "PipelineConfig",
    "PipelineFile",
    "PipelineSpec",
    "Resolved",
    "StepSpec",
    "StreamingConfig",
    "Transport",
    "Unset",
    "config_context",
    "current_chain",
    "default_display",
    "is_unset",
    "make_config_classes",
    "natural_key",
    "resolve",
    "resolve_current",
]
