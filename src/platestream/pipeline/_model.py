"""Pipelines, steps and functions: written in Python or loaded from TOML, resolved alike.

A ``Pipeline`` is a sequence of ``FunctionStep``s; a step runs its ``FunctionCall``s in
order, each on the previous one's output, over the images of one well. Config overrides sit
at every level (pipeline, step, function) and resolve through ``platestream.config._resolve``
whether they came from Python (origin ``step 'blur' (Python)``) or a file (``p.toml:12``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platestream.config import (
    CLASSES,
    UNSET,
    ConfigError,
    ConfigLayer,
    FrozenMap,
    LoadedPipeline,
    OutputKind,
    PipelineConfig,
    Resolved,
    check_import_path,
    function_label,
    load_pipeline,
    resolve,
    toml_layers,
)


def import_callable(path: str) -> Callable[..., Any]:
    """``package.module:attr`` -> the callable; a clear error names what failed."""
    problem = check_import_path(path)
    if problem:
        raise ConfigError(f"function {path!r}: {problem}")
    module_name, attr_path = path.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"function {path!r}: cannot import module {module_name!r}: {err}"
        ) from None
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ConfigError(f"function {path!r}: module {module_name!r} has no {attr_path!r}")
        target = getattr(target, attr)
    if not callable(target):
        raise ConfigError(f"function {path!r}: {attr_path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _path_of(function: Callable[..., Any] | str) -> str:
    if isinstance(function, str):
        return function
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if not module or not name or "<" in name:
        raise ConfigError(
            f"function {function!r}: pipeline functions must be importable (module-level) "
            "so worker processes can load them"
        )
    return f"{module}:{name}"


@dataclass(frozen=True)
class FunctionCall:
    """One function of a step: an import path, its parameters, output kind and overrides."""

    function: str
    params: Mapping[str, Any] = field(default_factory=FrozenMap)
    name: str = ""
    output: OutputKind = OutputKind.IMAGE
    config: Any = field(default_factory=PipelineConfig)

    @classmethod
    def of(
        cls,
        function: Callable[..., Any] | str,
        *,
        name: str = "",
        output: OutputKind | str = OutputKind.IMAGE,
        config: Any = None,
        **params: Any,
    ) -> FunctionCall:
        return cls(
            _path_of(function),
            FrozenMap(params),
            name,
            OutputKind(output),
            config if config is not None else PipelineConfig(),
        )

    @property
    def label(self) -> str:
        return self.name or self.function.rsplit(":", 1)[-1].rsplit(".", 1)[-1]

    def load(self) -> Callable[..., Any]:
        return import_callable(self.function)


@dataclass(frozen=True)
class FunctionStep:
    """A named step: its functions, the component it groups images by, its overrides."""

    name: str
    functions: tuple[FunctionCall, ...]
    group_by: str = ""
    config: Any = field(default_factory=PipelineConfig)

    def __post_init__(self) -> None:
        if not self.functions:
            raise ConfigError(f"step {self.name!r}: a step needs at least one function")
        labels = [f.label for f in self.functions]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"step {self.name!r}: function names must be unique: {labels}")
        if self.group_by and self.group_by not in CLASSES.registry:
            raise ConfigError(f"step {self.name!r}: group_by {self.group_by!r} is no component")


@dataclass(frozen=True)
class Pipeline:
    """Steps over a plate, with the pipeline-level config and worker/output settings."""

    name: str
    steps: tuple[FunctionStep, ...]
    config: Any = field(default_factory=PipelineConfig)
    workers: int = 0
    output_dir: str = ""
    loaded: LoadedPipeline | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline {self.name!r}: step names must be unique: {names}")

    def layers(self, step_index: int, function_index: int) -> list[ConfigLayer]:
        """The config chain of one function: function -> step -> pipeline."""
        step = self.steps[step_index]
        function = step.functions[function_index]
        if self.loaded is not None:
            return toml_layers(self.loaded, CLASSES, step.name, function.label)
        return [
            ConfigLayer.python(function.config, "function", function.label),
            ConfigLayer.python(step.config, "step", step.name),
            ConfigLayer.python(self.config, "pipeline", self.name),
        ]

    def resolve(self, step_index: int, function_index: int) -> Resolved:
        return resolve(PipelineConfig, self.layers(step_index, function_index))

    def resolved_configs(self) -> dict[tuple[int, int], Any]:
        """Every function's resolved PipelineConfig, keyed by (step, function) index."""
        return {
            (s, f): self.resolve(s, f).value
            for s, step in enumerate(self.steps)
            for f in range(len(step.functions))
        }

    def check_functions(self) -> None:
        """Import every function now, so a typo fails before any worker starts."""
        problems = []
        for step in self.steps:
            for function in step.functions:
                try:
                    function.load()
                except ConfigError as err:
                    problems.append(f"step {step.name!r}: {err}")
        if problems:
            raise ConfigError("\n".join(problems))


def _config_of(spec: Any) -> Any:
    value = spec.napari_streaming
    return PipelineConfig() if value is UNSET else PipelineConfig(napari_streaming=value)


def pipeline_from_loaded(loaded: LoadedPipeline) -> Pipeline:
    spec = loaded.spec
    steps = tuple(
        FunctionStep(
            name=step.name,
            functions=tuple(
                FunctionCall(
                    f.function, FrozenMap(f.params), function_label(f), f.output, _config_of(f)
                )
                for f in step.functions
            ),
            group_by=step.group_by,
            config=_config_of(step),
        )
        for step in spec.steps
    )
    return Pipeline(
        name=spec.pipeline.name,
        steps=steps,
        config=_config_of(spec.pipeline),
        workers=spec.pipeline.workers,
        output_dir=spec.pipeline.output_dir,
        loaded=loaded,
    )


def load_pipeline_file(path: str | Path) -> Pipeline:
    """A pipeline from a TOML file (raises ConfigFileError with every problem)."""
    return pipeline_from_loaded(load_pipeline(path, CLASSES))


@dataclass(frozen=True)
class Stream:
    """What one function of a step streams: its step index and name, and resolved config.

    A step with one function streams under the step's name; a step with several streams
    each function's output under ``<step>_<function>``, so each gets its own layers.
    """

    step_index: int  # 1-based position of the step
    name: str  # the ImageItem step_name
    step: str
    function: str
    output: OutputKind
    config: Any  # the resolved PipelineConfig


def stream_name(step: str, function: str, function_count: int) -> str:
    return step if function_count <= 1 else f"{step}_{function}"


def pipeline_streams(pipeline: Pipeline) -> list[Stream]:
    streams = []
    for s, step in enumerate(pipeline.steps):
        for f, function in enumerate(step.functions):
            streams.append(
                Stream(
                    s + 1,
                    stream_name(step.name, function.label, len(step.functions)),
                    step.name,
                    function.label,
                    function.output,
                    pipeline.resolve(s, f).value,
                )
            )
    return streams


def file_streams(loaded: LoadedPipeline) -> list[Stream]:
    """The streams of a pipeline file; a step without functions streams under its name."""
    from platestream.config import resolve_file

    streams = []
    for s, step in enumerate(loaded.spec.steps):
        if not step.functions:
            config = resolve_file(loaded, CLASSES, step.name).value
            streams.append(Stream(s + 1, step.name, step.name, "", OutputKind.IMAGE, config))
        for function in step.functions:
            label = function_label(function)
            config = resolve_file(loaded, CLASSES, step.name, label).value
            name = stream_name(step.name, label, len(step.functions))
            streams.append(Stream(s + 1, name, step.name, label, function.output, config))
    return streams
