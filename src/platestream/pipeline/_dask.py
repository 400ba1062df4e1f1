"""Wells as Dask distributed tasks: ``RunOptions(executor="dask")``.

The run's client (given, or made for the scheduler at ``RunOptions.scheduler``, or for a
``LocalCluster`` of worker processes that starts and stops with the run) submits one task
per well. Workers stream straight to the viewers - pixels never pass through the
scheduler or the client: ``StreamingPlugin``, a Dask worker plugin registered for the run,
owns one streaming backend per worker process, made on the worker's first task and closed
when the worker shuts down or the run ends (its shared memory goes with it). A worker on
the viewer's host streams through shared memory; one on another host streams inline
frames with CURVE, with the keys of that host's key store (``platestream keys``).

Tasks carry the plate's file paths, not pixels: every worker must see the plate folder at
the same path (a shared filesystem on a cluster). Progress, failures and the summary come
from the futures as they complete, as with the local process pool. A task Dask runs again
(its worker was lost) streams the same images, with the same run id, to the same planes:
they replace what the lost worker sent, no layer is duplicated.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._well_work import StepFailure, WellResult, WellTask, process_well


def _missing() -> RuntimeError:
    return RuntimeError(
        "the dask executor needs Dask distributed: pip install 'platestream[dask]' "
        "(or pip install distributed)"
    )


def _distributed(module: str = "distributed") -> Any:
    """Dask distributed (an optional dependency), typed loosely: it ships no type hints."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise _missing() from None


def _worker_plugin() -> Any:
    try:  # imported only for a Dask run; without Dask, run_dask says so
        return _distributed("distributed.diagnostics.plugin").WorkerPlugin
    except RuntimeError:
        return object


PLUGIN = "platestream-streaming"

_STREAMERS: dict[str, Any] = {}  # plugin name -> this worker process's streamer
_LOCK = threading.Lock()


class StreamingPlugin(_worker_plugin()):  # type: ignore[misc]
    """One streaming backend per worker process for one run (a Dask ``WorkerPlugin``:
    ``setup`` and ``teardown`` run in the worker). Tasks of a worker that runs several
    threads share it; its sends are serialised."""

    def __init__(
        self,
        name: str,
        streamer: Callable[..., Any],
        configs: Sequence[Any],
        connect_timeout_s: float,
        layout: Mapping[str, Sequence[Any]] | None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self.streamer = streamer  # the runner's BackendStreamer (a class: pickled by name)
        self.configs = list(configs)
        self.connect_timeout_s = connect_timeout_s
        self.layout = dict(layout or {})
        self.nice = nice

    def setup(self, worker: Any = None) -> None:
        if self.nice:
            with contextlib.suppress(OSError, AttributeError):
                os.nice(self.nice)  # a local cluster shares the viewer's cores
        with _LOCK:
            if self.name not in _STREAMERS and self.configs:
                _STREAMERS[self.name] = _Serialised(
                    self.streamer(self.configs, self.connect_timeout_s, self.layout)
                )

    def teardown(self, worker: Any = None) -> None:
        with _LOCK:
            streamer = _STREAMERS.pop(self.name, None)
        if streamer is not None:
            streamer.close()


class _Serialised:
    """A streamer whose sends take turns (a Dask worker may run tasks on threads)."""

    def __init__(self, streamer: Any) -> None:
        self.streamer = streamer
        self.lock = threading.Lock()

    def send(self, arrays: Sequence[Any], items: Sequence[Any], config: Any) -> Any:
        with self.lock:
            return self.streamer.send(arrays, items, config)

    def close(self) -> None:
        with self.lock:
            self.streamer.close()


def run_well(task: WellTask, plugin: str) -> WellResult:
    """A Dask task: one well, streamed through this worker's streamer for the run."""
    with _LOCK:
        streamer = _STREAMERS.get(plugin)
    return process_well(task, streamer)


def run_dask(
    tasks: list[WellTask],
    configs: list[Any],
    options: Any,
    workers: int,
    on_result: Callable[[WellResult], None] | None,
    layout: dict[str, list[Any]] | None,
    client: Any = None,
    *,
    streamer: Callable[..., Any],
    nice: int = 0,
) -> list[WellResult]:
    """Run the wells on Dask (see the module docs); results in the tasks' order.
    ``streamer`` makes a worker's streaming backend from (configs, connect timeout,
    layout); ``nice``: how much nicer the workers of a LocalCluster run."""
    distributed = _distributed()
    client_class, as_completed = distributed.Client, distributed.as_completed

    own_client = own_cluster = None
    local = False
    if client is None:
        if options.scheduler:
            client = own_client = client_class(options.scheduler)
        else:  # worker processes on this machine, for this run only
            own_cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = own_client = client_class(own_cluster)
            local = True
    name = f"{PLUGIN}-{tasks[0].run if tasks else 0}-{os.getpid()}"
    plugin = StreamingPlugin(
        name, streamer, configs, options.connect_timeout_s, layout, nice if local else 0
    )
    results: dict[str, WellResult] = {}
    try:
        client.register_plugin(plugin, name=name)
        futures = {
            client.submit(run_well, task, name, key=f"{name}-{task.well}", pure=False): task
            for task in tasks
        }
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as err:  # the task failed beyond its step (e.g. workers lost)
                result = WellResult(task.well)
                result.failure = StepFailure(
                    task.well, "-", "-", f"dask task failed: {type(err).__name__}: {err}"
                )
            results[task.well] = result
            if on_result:
                on_result(result)
    finally:
        with contextlib.suppress(Exception):  # the streamers close on every worker
            client.unregister_worker_plugin(name)
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return [results[t.well] for t in tasks]
