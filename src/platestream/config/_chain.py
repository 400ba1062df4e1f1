"""The inheritance chain of a pipeline file: function -> step -> pipeline -> defaults."""

from __future__ import annotations

from typing import Any

from ._base import ConfigBase
from ._errors import ConfigError
from ._factory import ConfigClasses, config_fields_of
from ._field_specs import suggest
from ._resolve import ConfigLayer, Resolved, resolve
from ._toml_io import LoadedPipeline


def function_label(function_spec: Any) -> str:
    """A function's name: its ``name`` or the last part of its import path."""
    if function_spec.name:
        return str(function_spec.name)
    return str(function_spec.function).rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def find_step(pipeline_file: Any, name: str) -> tuple[int, Any]:
    names = [step.name for step in pipeline_file.steps]
    if name in names:
        return names.index(name), pipeline_file.steps[names.index(name)]
    raise ConfigError(
        f"no step {name!r}{suggest(name, names)}; steps: {', '.join(names) or 'none'}"
    )


def find_function(step: Any, name: str) -> tuple[int, Any]:
    labels = [function_label(f) for f in step.functions]
    if name in labels:
        return labels.index(name), step.functions[labels.index(name)]
    raise ConfigError(
        f"step {step.name!r} has no function {name!r}{suggest(name, labels)}; "
        f"functions: {', '.join(labels) or 'none'}"
    )


def _leaf_paths(config: Any, prefix: str = "") -> list[str]:
    paths = []
    for name, value in config.set_fields():
        if isinstance(value, ConfigBase):
            paths.extend(_leaf_paths(value, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _toml_layer(loaded: LoadedPipeline, spec: Any, base: str, label: str, cls: type) -> ConfigLayer:
    config = config_fields_of(spec, cls)
    locations = {path: loaded.origin(f"{base}.{path}") for path in _leaf_paths(config)}
    return ConfigLayer(config, f"{loaded.file} ({label})", locations)


def toml_layers(
    loaded: LoadedPipeline,
    classes: ConfigClasses,
    step: str | None = None,
    function: str | None = None,
) -> list[ConfigLayer]:
    """The chain for a step/function of a loaded file, most specific first."""
    spec, cls = loaded.spec, classes.pipeline
    layers = []
    if function is not None and step is None:
        raise ConfigError("a function is looked up within a step: give the step too")
    if step is not None:
        index, step_spec = find_step(spec, step)
        if function is not None:
            f_index, f_spec = find_function(step_spec, function)
            base = f"steps[{index}].functions[{f_index}]"
            layers.append(_toml_layer(loaded, f_spec, base, f"function {function!r}", cls))
        layers.append(_toml_layer(loaded, step_spec, f"steps[{index}]", f"step {step!r}", cls))
    layers.append(_toml_layer(loaded, spec.pipeline, "pipeline", "pipeline", cls))
    return layers


def resolve_file(
    loaded: LoadedPipeline,
    classes: ConfigClasses,
    step: str | None = None,
    function: str | None = None,
) -> Resolved:
    """The resolved PipelineConfig for a step/function of a loaded file, with origins."""
    return resolve(classes.pipeline, toml_layers(loaded, classes, step, function))
