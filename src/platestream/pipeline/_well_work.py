"""What a worker does with one well: load its images, run every step, stream, write outputs.

Runs in a worker process (``process_well`` is top-level so it pickles). Each function's
output is streamed as soon as it exists, one batch per function and well; a function that
raises ends that well's run with a ``StepFailure`` naming step, well and function, while
what was already streamed stays in the viewer.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from platestream.config import FrozenMap, OutputKind
from platestream.layering import ImageItem, LayerKind

from ._model import FunctionStep, Pipeline, Stream

Components = Mapping[str, Any]


@dataclass(frozen=True)
class SourceImage:
    path: str
    components: Components


@dataclass(frozen=True)
class WellTask:
    well: str
    images: tuple[SourceImage, ...]
    pipeline: Pipeline
    streams: tuple[Stream, ...]  # one per (step, function), in order
    output_dir: str = ""
    stream: bool = True
    plate_root: str = ""
    run: int = 0  # this run's id (start time in ms): newer runs replace under replace_layers


@dataclass(frozen=True)
class StepFailure:
    well: str
    step: str
    function: str
    error: str  # "ValueError: ..."
    details: str = ""  # the traceback

    def __str__(self) -> str:
        return f"well {self.well}, step {self.step!r}, function {self.function!r}: {self.error}"


@dataclass
class WellResult:
    well: str
    outputs: int = 0
    streamed: int = 0
    streamed_to: Counter[str] = field(default_factory=Counter)  # by viewer, "host:port"
    dropped: Counter[str] = field(default_factory=Counter)
    written: int = 0
    failure: StepFailure | None = None


@dataclass
class _Image:
    pixels: np.ndarray[Any, Any]
    components: Components
    source: str  # the input file it derives from (for output names)
    suffix: str = ""  # added to the output file name, e.g. "_z_index_merged" for projections


class ImageStreamer:
    """Where a worker's outputs go for display; the runner injects the real backend."""

    def send(self, arrays: Sequence[Any], items: Sequence[ImageItem], config: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        return None


def _groups(images: list[_Image], group_by: str) -> list[list[_Image]]:
    """Images sharing every component but ``group_by``, each group sorted along it."""
    if not group_by:
        return [[image] for image in images]
    from platestream.config import CLASSES

    key_of = CLASSES.registry.get(group_by).sort_key
    groups: dict[tuple[Any, ...], list[_Image]] = {}
    for image in images:
        rest = tuple(sorted((k, str(v)) for k, v in image.components.items() if k != group_by))
        groups.setdefault(rest, []).append(image)
    return [sorted(g, key=lambda i: key_of(i.components.get(group_by, 0))) for g in groups.values()]


def _apply(
    function: Any, params: Mapping[str, Any], group: list[_Image], group_by: str
) -> list[_Image]:
    """Run one function on one group; a stack may come back per image or as one image."""
    if len(group) == 1 and not group_by:
        result = np.asarray(function(group[0].pixels, **params))
        return [_Image(result, group[0].components, group[0].source, group[0].suffix)]
    stack = np.stack([image.pixels for image in group])
    result = np.asarray(function(stack, **params))
    if result.ndim == stack.ndim and result.shape[0] == len(group):
        return [
            _Image(plane, i.components, i.source, i.suffix)
            for plane, i in zip(result, group, strict=True)
        ]
    if result.ndim == stack.ndim - 1:  # a projection: one image for the group
        merged = {k: v for k, v in group[0].components.items() if k != group_by}
        return [_Image(result, merged, group[0].source, f"_{group_by}_merged")]
    raise ValueError(
        f"returned shape {result.shape} for a stack of {stack.shape}: expected one plane per "
        f"input ({len(group)}, ...) or a single image {stack.shape[1:]}"
    )


def _items(outputs: list[_Image], stream: Stream, run: int) -> list[ImageItem]:
    kind = LayerKind.LABELS if stream.output is OutputKind.LABELS else LayerKind.IMAGE
    return [
        ImageItem(
            FrozenMap(o.components),
            stream.step_index,
            stream.name,
            o.pixels.shape,
            o.pixels.dtype.name,
            kind,
            FrozenMap({"path": o.source, "run": run}),
        )
        for o in outputs
    ]


def _write(outputs: list[_Image], stream: Stream, task: WellTask) -> int:
    folder = Path(task.output_dir) / f"Step_{stream.step_index:02d}_{stream.name}"
    for image in outputs:
        source = Path(image.source)
        try:
            relative = source.relative_to(task.plate_root) if task.plate_root else source.name
        except ValueError:
            relative = Path(source.name)
        target = folder / relative
        target = target.with_name(f"{target.stem}{image.suffix}.tif")
        target.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(target, image.pixels)
    return len(outputs)


class _FunctionFailed(Exception):
    def __init__(self, function: str) -> None:
        super().__init__(function)
        self.function = function


def _run_step(
    step: FunctionStep,
    streams: list[Stream],
    images: list[_Image],
    task: WellTask,
    sink: ImageStreamer | None,
    result: WellResult,
) -> list[_Image]:
    for function, stream in zip(step.functions, streams, strict=True):
        outputs: list[_Image] = []
        try:
            callable_ = function.load()
            for group in _groups(images, step.group_by):
                outputs.extend(_apply(callable_, function.params, group, step.group_by))
        except Exception as err:  # a user's function: name it, keep the other wells going
            raise _FunctionFailed(function.label) from err
        result.outputs += len(outputs)
        streaming = stream.config.napari_streaming
        if sink is not None and task.stream and streaming.enabled:
            report = sink.send(
                [o.pixels for o in outputs], _items(outputs, stream, task.run), streaming
            )
            sent = int(getattr(report, "sent", 0))
            result.streamed += sent
            result.streamed_to[f"{streaming.napari_host}:{streaming.napari_port}"] += sent
            for reason, count in getattr(report, "dropped", {}).items():
                result.dropped[str(getattr(reason, "value", reason))] += count
        if task.output_dir:
            result.written += _write(outputs, stream, task)
        images = outputs
    return images


def process_well(task: WellTask, sink: ImageStreamer | None) -> WellResult:
    result = WellResult(task.well)
    images = [
        _Image(np.asarray(tifffile.imread(s.path)), s.components, s.path) for s in task.images
    ]
    position = 0
    for step in task.pipeline.steps:
        streams = list(task.streams[position : position + len(step.functions)])
        position += len(step.functions)
        try:
            images = _run_step(step, streams, images, task, sink, result)
        except _FunctionFailed as failed:
            cause = failed.__cause__
            result.failure = StepFailure(
                task.well,
                step.name,
                failed.function,
                f"{type(cause).__name__}: {cause}",
                "".join(traceback.format_exception(cause)) if cause else "",
            )
            break
    return result
