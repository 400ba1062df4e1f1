"""Run a pipeline over a plate: wells in a pool of worker processes, streaming as they go.

Every worker opens its own streaming backend (shared-memory pools are per producer) and
starts the handshake with each enabled viewer as it starts; the handshake runs in the
background while the first well computes. Before its first image to a viewer, the worker
waits for that handshake until ``connect_timeout_s`` after its start, so a viewer that is
still starting does not cost the first wells, and one that is up costs no waiting at all.
A well whose step fails is reported and the others go on; the run's exit code is then 1.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from platestream.layering import ImageItem, layout_of

from ._model import Pipeline, Stream, pipeline_streams
from ._plate_folder import Plate, read_plate
from ._priority import session_nicer
from ._well_work import ImageStreamer, SourceImage, StepFailure, WellResult, WellTask, process_well


@dataclass(frozen=True)
class RunOptions:
    workers: int = 0  # 0: the pipeline's setting, else one per core; 1: in this process
    output_dir: str = ""  # overrides the pipeline's output_dir when set
    stream: bool = True  # False turns streaming off for the whole run
    connect_timeout_s: float = 10.0  # per viewer, once per worker, before the first image
    executor: str = "local"  # "local": a process pool here; "dask": Dask distributed
    scheduler: str = ""  # dask: the scheduler's address; empty: a LocalCluster for the run
    run: int = 0  # the run id items carry (0: the start time in ms); see replace_layers


@dataclass
class RunResult:
    wells: list[WellResult]
    elapsed_s: float
    workers: int
    failures: list[StepFailure] = field(default_factory=list)
    # what a viewer missed at the end, by port (filled by platestream.run_pipeline)
    viewer_problems: dict[int, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    @property
    def streamed(self) -> int:
        return sum(w.streamed for w in self.wells)

    def streamed_to(self, host: str, port: int) -> int:
        """Images sent to the viewer at host:port (each viewer waits for its own share)."""
        return sum(w.streamed_to[f"{host}:{port}"] for w in self.wells)

    @property
    def dropped(self) -> int:
        return sum(sum(w.dropped.values()) for w in self.wells)


class BackendStreamer(ImageStreamer):
    """Streams through a NapariStreamingBackend (one per worker process)."""

    def __init__(
        self,
        configs: Sequence[Any],
        connect_timeout_s: float,
        layout: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        from platestream.backend import NapariStreamingBackend

        self.backend = NapariStreamingBackend()
        deadline = time.monotonic() + connect_timeout_s
        # Viewers whose handshake the first image must still wait for, until the deadline.
        self.waiting: dict[tuple[str, int], float] = {}
        for config in configs:  # each distinct viewer, once: start the handshake, go on
            self.backend.connect(config, timeout_s=0.0)
            if layout:  # the viewer sizes its layers for the whole plate at once
                self.backend.declare_layout(layout, config)
            self.waiting[(config.napari_host, config.napari_port)] = deadline

    def send(self, arrays: Sequence[Any], items: Sequence[ImageItem], config: Any) -> Any:
        deadline = self.waiting.pop((config.napari_host, config.napari_port), None)
        if deadline is not None:
            self.backend.connect(config, timeout_s=max(0.0, deadline - time.monotonic()))
        return self.backend.save_batch(arrays, items, config=config)

    def close(self) -> None:
        self.backend.close()


def plate_layout(plate: Plate) -> dict[str, list[object]]:
    """The component values of the plate's images, in order of appearance: what a run
    will stream, declared to the viewers so they size each layer once."""
    return layout_of(image.name.components for image in plate.images)


def viewer_configs(streams: Sequence[Stream]) -> list[Any]:
    """One enabled streaming config per distinct viewer (host, port), in stream order."""
    seen: dict[tuple[str, int], Any] = {}
    for stream in streams:
        config = stream.config.napari_streaming
        if config.enabled:
            seen.setdefault((config.napari_host, config.napari_port), config)
    return list(seen.values())


_STREAMER: ImageStreamer | None = None
#: Workers run this much nicer than the process that started them, and the run's session
#: this much nicer than others (``_priority``): while they keep every core busy, a viewer
#: on the same machine (at the default priority) still gets a core the moment it has
#: images to show.
WORKER_NICENESS = 10

# Imported once by the fork server, so workers start with them loaded instead of each
# importing numpy, scipy, napari's colormaps and the transport again (~0.5 s of CPU each).
PRELOAD = (
    "platestream.pipeline._well_work",
    "platestream.pipeline._functions",
    "platestream.backend",
)


def worker_context(functions: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """Where workers come from: a fork server (Linux, macOS) that has imported platestream
    and the pipeline's function modules, else spawned interpreters. Either way a worker
    inherits no sockets, threads or Qt from this process."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Effective when the server starts (the first run of this process); a module that
    # fails to import there is simply imported by the workers that need it.
    context.set_forkserver_preload([*PRELOAD, *functions])
    return context


def _init_worker(
    configs: list[Any],
    connect_timeout_s: float,
    environ: dict[str, str] | None = None,
    layout: dict[str, list[Any]] | None = None,
) -> None:
    global _STREAMER
    with contextlib.suppress(OSError, AttributeError):  # no nice() (Windows): as it is
        os.nice(WORKER_NICENESS)  # the viewer, at the default priority, goes first
    if environ is not None:  # the fork server's environment is that of its start: renew it
        os.environ.clear()
        os.environ.update(environ)
    if configs:
        _STREAMER = BackendStreamer(configs, connect_timeout_s, layout)
        # multiprocessing workers end through os._exit, which skips atexit; Finalize runs.
        Finalize(_STREAMER, _STREAMER.close, exitpriority=10)


def _run_task(task: WellTask) -> WellResult:
    return process_well(task, _STREAMER)


def well_tasks(
    plate: Plate, pipeline: Pipeline, streams: Sequence[Stream], options: RunOptions
) -> list[WellTask]:
    from platestream.config import CLASSES

    by_well: dict[str, list[SourceImage]] = {}
    for image in plate.images:
        well = str(image.name.components.get("well", ""))
        by_well.setdefault(well, []).append(SourceImage(str(image.path), image.name.components))
    well_key = CLASSES.registry.get("well").sort_key
    output_dir = options.output_dir or pipeline.output_dir
    run = options.run or int(time.time() * 1000)
    return [
        WellTask(
            well,
            tuple(by_well[well]),
            pipeline,
            tuple(streams),
            output_dir,
            options.stream,
            str(plate.root),
            run,
        )
        for well in sorted(by_well, key=well_key)
    ]


def run_pipeline(
    pipeline: Pipeline,
    plate_dir: str | Path | Plate,
    options: RunOptions | None = None,
    on_result: Callable[[WellResult], None] | None = None,
    *,
    client: Any = None,
) -> RunResult:
    """Run ``pipeline`` over the plate folder; ``on_result`` sees each well as it ends.
    ``options.executor = "dask"`` runs the wells as Dask tasks, on ``client`` if given,
    else on the scheduler at ``options.scheduler``, else on a LocalCluster of one worker
    process per core that lives as long as the run (``platestream.pipeline._dask``)."""
    options = options or RunOptions()
    if options.executor not in ("local", "dask"):
        raise ValueError(f"executor {options.executor!r}: expected 'local' or 'dask'")
    pipeline.check_functions()
    plate = plate_dir if isinstance(plate_dir, Plate) else read_plate(Path(plate_dir))
    streams = pipeline_streams(pipeline)
    tasks = well_tasks(plate, pipeline, streams, options)
    configs = viewer_configs(streams) if options.stream else []
    layout = plate_layout(plate)
    workers = options.workers or pipeline.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(tasks)))
    started = time.monotonic()
    report = _failures_to(configs, on_result)
    dask = options.executor == "dask" or client is not None
    # Worker processes on this machine: their session goes below the viewers' (_priority).
    local_workers = (not options.scheduler and client is None) if dask else workers > 1
    with session_nicer(WORKER_NICENESS if local_workers else 0):
        results = _execute(tasks, configs, options, workers, report, layout, client, dask)
    failures = [r.failure for r in results if r.failure is not None]
    return RunResult(results, time.monotonic() - started, workers, failures)


def _execute(
    tasks: list[WellTask],
    configs: list[Any],
    options: RunOptions,
    workers: int,
    report: Callable[[WellResult], None] | None,
    layout: dict[str, list[Any]],
    client: Any,
    dask: bool,
) -> list[WellResult]:
    if dask:
        from ._dask import run_dask

        return run_dask(
            tasks,
            configs,
            options,
            workers,
            report,
            layout,
            client,
            streamer=BackendStreamer,
            nice=WORKER_NICENESS,
        )
    if workers == 1:
        return _run_here(tasks, configs, options, report, layout)
    return _run_pool(tasks, configs, options, workers, report, layout)


def _failures_to(
    configs: Sequence[Any], on_result: Callable[[WellResult], None] | None
) -> Callable[[WellResult], None] | None:
    """``on_result``, and a well that failed is told to every viewer (its plate overview
    marks it in the step that failed; a worker that died: in every step)."""
    if not configs:
        return on_result

    def report(result: WellResult) -> None:
        failure = result.failure
        if failure is not None:
            from platestream.backend import report_failed

            step = "" if failure.step == "-" else failure.step
            for config in configs:
                report_failed(config, [failure.well], step, str(failure))
        if on_result is not None:
            on_result(result)

    return report


def _run_here(
    tasks: list[WellTask],
    configs: list[Any],
    options: RunOptions,
    on_result: Callable[[WellResult], None] | None,
    layout: dict[str, list[Any]] | None = None,
) -> list[WellResult]:
    sink = BackendStreamer(configs, options.connect_timeout_s, layout) if configs else None
    results = []
    try:
        for task in tasks:
            results.append(process_well(task, sink))
            if on_result:
                on_result(results[-1])
    finally:
        if sink is not None:
            sink.close()
    return results


def _run_pool(
    tasks: list[WellTask],
    configs: list[Any],
    options: RunOptions,
    workers: int,
    on_result: Callable[[WellResult], None] | None,
    layout: dict[str, list[Any]] | None = None,
) -> list[WellResult]:
    modules = {
        call.function.split(":", 1)[0]
        for task in tasks[:1]
        for step in task.pipeline.steps
        for call in step.functions
    }
    modules.discard("__main__")  # a script's own functions: the workers import it themselves
    results: dict[str, WellResult] = {}
    with ProcessPoolExecutor(
        workers,
        mp_context=worker_context(sorted(modules)),
        initializer=_init_worker,
        initargs=(configs, options.connect_timeout_s, dict(os.environ), layout),
    ) as pool:
        futures: dict[Future[WellResult], WellTask] = {pool.submit(_run_task, t): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool as err:
                result = WellResult(task.well)
                result.failure = StepFailure(task.well, "-", "-", f"worker process died: {err}")
            results[task.well] = result
            if on_result:
                on_result(result)
    return [results[t.well] for t in tasks]
