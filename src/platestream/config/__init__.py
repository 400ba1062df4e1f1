"""The configuration framework: frozen config classes generated from the component registry,
the UNSET placeholder, resolution through the inheritance chain with provenance, and TOML.

Importing this package imports no Qt (only ``napari.utils.colormaps``, for the colormap enum).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import ConfigBase
from ._chain import function_label, resolve_file, toml_layers
from ._components import (
    DEFAULT_REGISTRY,
    Component,
    ComponentRegistry,
    DimensionMode,
    natural_key,
    normalize_well,
    well_key,
)
from ._enums import (
    DeliveryMode,
    NapariColormap,
    NapariDimensionMode,
    NapariVariableSizeHandling,
    OutputKind,
    StoreCodec,
    StoreKind,
    Transport,
)
from ._errors import ConfigError, ConfigFileError, ConfigIssue
from ._factory import ConfigClasses, make_config_classes
from ._field_specs import FieldSpec, MapOf, TupleOf, check_import_path, check_port
from ._frozen import FrozenMap
from ._resolve import (
    ConfigLayer,
    Resolved,
    config_context,
    current_chain,
    resolve,
    resolve_current,
)
from ._toml_io import SCHEMA_FILE_NAME, LoadedPipeline, load_pipeline, unstructure
from ._unset import UNSET, Unset, is_unset

CLASSES: ConfigClasses = make_config_classes(DEFAULT_REGISTRY)

# The generated classes are built at import; type checkers and IDEs read their fields from
# the committed stubs (``_classes.pyi``, written by ``python -m platestream.config.stubgen``).
if TYPE_CHECKING:
    from ._classes import (
        FunctionSpec,
        NapariDisplayConfig,
        NapariStreamingConfig,
        PipelineConfig,
        PipelineFile,
        PipelineSpec,
        StepSpec,
        StreamingConfig,
    )
else:
    StreamingConfig = CLASSES.streaming
    NapariDisplayConfig = CLASSES.display
    NapariStreamingConfig = CLASSES.napari_streaming
    PipelineConfig = CLASSES.pipeline
    FunctionSpec = CLASSES.function_spec
    StepSpec = CLASSES.step_spec
    PipelineSpec = CLASSES.pipeline_spec
    PipelineFile = CLASSES.pipeline_file


def default_display() -> NapariStreamingConfig:
    """The NapariStreamingConfig with every field at its global default."""
    config: NapariStreamingConfig = resolve(NapariStreamingConfig, []).value
    return config


__all__ = [
    "CLASSES",
    "DEFAULT_REGISTRY",
    "SCHEMA_FILE_NAME",
    "UNSET",
    "Component",
    "ComponentRegistry",
    "ConfigBase",
    "ConfigClasses",
    "ConfigError",
    "ConfigFileError",
    "ConfigIssue",
    "ConfigLayer",
    "DeliveryMode",
    "DimensionMode",
    "FieldSpec",
    "FrozenMap",
    "FunctionSpec",
    "LoadedPipeline",
    "MapOf",
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
    "StoreCodec",
    "StoreKind",
    "StreamingConfig",
    "Transport",
    "TupleOf",
    "Unset",
    "check_import_path",
    "check_port",
    "config_context",
    "current_chain",
    "default_display",
    "function_label",
    "is_unset",
    "load_pipeline",
    "make_config_classes",
    "natural_key",
    "normalize_well",
    "resolve",
    "resolve_current",
    "resolve_file",
    "toml_layers",
    "unstructure",
    "well_key",
]
