"""``NapariStreamVisualizer``: a handle on one viewer - start or reuse it, stream to it, stop it.

``NapariStreamVisualizer`` is what a pipeline or a script holds::

    visualizer = NapariStreamVisualizer(config, title="screen 42", persistent=True)
    visualizer.start_viewer()              # returns at once; the viewer starts meanwhile
    visualizer.save_batch(arrays, items)   # queued (bounded) until the viewer is ready
    visualizer.wait_ready(60)              # optional
    visualizer.snapshot("now.png"); visualizer.status(); visualizer.stop()

Rules (docs/viewer.md):

* **Reuse**: a platestream viewer answering on the port is used as it is.
* **Foreign ports**: a port pair held by anything else is never touched; the manager
  tries the next pair (``on_conflict="next"``, up to ``port_attempts``) or raises
  ``PortConflict`` (``on_conflict="fail"``).
* **Silent viewers**: a platestream viewer that stops answering (its record names a pid
  that proves to be it) gets SIGTERM, then SIGKILL after ``quit_timeout_s`` - each time
  only after checking the pid is still that viewer - and a fresh viewer takes the port.
* Every viewer runs in its own session (its own CPU share under autogroup scheduling);
  **persistent** ones outlive this process, non-persistent ones end with it (the viewer
  watches this pid through a pidfd).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from platestream.backend import (
    ControlTimeout,
    InsecureBindError,
    KeyStore,
    NapariStreamingBackend,
    SaveReport,
    Target,
    checked_layout,
    is_local,
    is_loopback,
    pid_alive,
    request_once,
)
from platestream.config import NapariStreamingConfig, resolve_current
from platestream.layering import checked_show
from platestream.schemas import (
    Clear,
    Error,
    LayersReport,
    LayersRequest,
    Pong,
    Shown,
    Shutdown,
    Snapshot,
    SnapshotReply,
    StatusReport,
    StatusRequest,
    WaitShown,
    WellsFailed,
    WireError,
)

from . import _processes as procs
from ._identity import MARKER, PORT_TAKEN
from ._ports import (
    Holder,
    PortState,
    credentials,
    free_port,
    inspect,
    listening,
    ping,
    request_viewer,
)
from ._records import remove_record, runtime_dir

log = logging.getLogger(__name__)


class PortConflict(RuntimeError):
    """The configured port pair is held by something that is not a platestream viewer."""


class ViewerError(RuntimeError):
    """The viewer could not be started, reached or stopped."""


def store_arguments(config: Any) -> list[str]:
    """The viewer command's options from a resolved streaming config: the run store's
    (``store``, ``store_dir``, ``store_codec``, ``viewer_memory_mb``) and the plate
    overview's (``overview``, ``overview_tile_px``, ``overview_site_layout``)."""
    arguments = ["--store", _value(config.store), "--codec", _value(config.store_codec)]
    arguments += ["--memory-mb", str(config.viewer_memory_mb)]
    if config.store_dir:
        arguments += ["--store-dir", str(config.store_dir)]
    if not config.overview:
        arguments += ["--no-overview"]
    arguments += ["--overview-tile", str(config.overview_tile_px)]
    arguments += ["--overview-sites", str(config.overview_site_layout)]
    return arguments


def _value(field: Any) -> str:
    return str(getattr(field, "value", field))


def viewer_command(
    port: int,
    title: str,
    host: str = "127.0.0.1",
    exit_with: int = 0,
    headless: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    command = [sys.executable, "-m", MARKER, "--port", str(port), "--title", title]
    if host != "127.0.0.1":
        command += ["--host", host]
    if exit_with:
        command += ["--exit-with", str(exit_with)]
    if headless:
        command.append("--headless")
    return command + list(extra)


def spawn_viewer(
    port: int,
    title: str,
    *,
    persistent: bool,
    headless: bool = False,
    extra: Sequence[str] = (),
    bind_host: str = "127.0.0.1",
    keys: str | Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a viewer process; its output goes to ``<runtime dir>/viewer-<port>.log``.
    ``bind_host``/``keys``: the address it binds and the key directory it requires CURVE
    with (``viewer start --host --keys``)."""
    log_path = runtime_dir() / f"viewer-{port}.log"
    exit_with = 0 if persistent else os.getpid()
    if keys:
        extra = ["--keys", str(Path(keys).resolve()), *extra]
    command = viewer_command(
        port, title, host=bind_host, exit_with=exit_with, headless=headless, extra=extra
    )
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own session, persistent or not: our Ctrl-C and exit spare a persistent
            # one (a non-persistent one ends with us through --exit-with), and with the
            # kernel's autogroup scheduling (sched_autogroup_enabled, on by default on
            # desktop kernels) the viewer gets its own share of the CPU however many
            # producer processes our session runs: 8 lossless producers in the caller's
            # session took the viewer's core and cut its throughput by a third.
            start_new_session=True,
            close_fds=True,
        )


class NapariStreamVisualizer:
    """Starts (or reuses) one viewer and streams to it; see the module docs."""

    def __init__(
        self,
        config: Any = None,
        visualizer_config: Any = None,
        *,
        title: str = "platestream",
        viewer_title: str | None = None,
        napari_port: int | None = None,
        replace_layers: bool | None = None,
        persistent: bool = True,
        on_conflict: str = "next",
        port_attempts: int = 20,
        queue_limit: int = 1024,
        startup_timeout_s: float = 60.0,
        quit_timeout_s: float = 5.0,
        headless: bool = False,
        show: Mapping[str, Iterable[Any]] | None = None,
        bind_host: str = "127.0.0.1",
        keys: str | Path | None = None,
    ) -> None:
        """``show``: the viewer it starts shows only these component values, e.g.
        ``{"well": ["A01", "A02"], "channel": ["DAPI"]}``; producers send it nothing else.
        ``bind_host``: the address a viewer it starts binds (beyond loopback it needs
        ``keys``, a key directory: it then requires CURVE with those keys, and this handle
        talks and streams to it with that directory's credentials).

        The reference system's call works as written: ``NapariStreamVisualizer(
        filemanager, visualizer_config, viewer_title=..., persistent=True,
        napari_port=5555, replace_layers=False)``. A file manager given first streams its
        ``napari_stream`` batches through this visualizer; ``viewer_title`` is ``title``;
        ``napari_port`` and ``replace_layers`` override the config's fields of those names
        (``replace_layers``: a new run replaces a layer's contents instead of adding to
        them)."""
        if on_conflict not in ("next", "fail"):
            raise ValueError("on_conflict is 'next' or 'fail'")
        filemanager = None
        if config is not None and hasattr(config, "stream_to"):  # a FileManager
            filemanager, config = config, visualizer_config
        elif visualizer_config is not None:
            raise TypeError("visualizer_config goes with a file manager given first")
        shown = checked_show(show or {})
        resolved = resolve_current(config if config is not None else NapariStreamingConfig())
        self.config = resolved.value
        if napari_port is not None:
            self.config = dataclasses.replace(self.config, napari_port=napari_port)
        if replace_layers is not None:
            self.config = dataclasses.replace(self.config, replace_layers=replace_layers)
        self.title = viewer_title if viewer_title is not None else title
        self.persistent = persistent
        self.on_conflict = on_conflict
        self.port_attempts = port_attempts
        self.queue_limit = queue_limit
        self.startup_timeout_s = startup_timeout_s
        self.quit_timeout_s = quit_timeout_s
        self.headless = headless  # the viewer runs its own X server, for as long as it lives
        self.extra_arguments: list[str] = []  # more viewer options (e.g. --run to reopen)
        for component, values in shown.items():
            self.extra_arguments += ["--show", f"{component}={','.join(values)}"]
        self.host: str = self.config.napari_host
        self.port: int = self.config.napari_port
        self.bind_host = bind_host
        self.keys = keys
        self.pong: Pong | None = None
        self.error: str | None = None
        self.dropped_before_ready = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._backend: NapariStreamingBackend | None = None
        self._layout: dict[str, tuple[int | str, ...]] = {}  # see declare_layout
        self._queue: deque[tuple[list[np.ndarray], list[Target], dict[str, Any]]] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._ready = False
        self._closed = False
        self._thread: threading.Thread | None = None
        if filemanager is not None:
            filemanager.stream_to(self)

    # ------------------------------------------------------------------ starting

    def start_viewer(self, async_mode: bool = True) -> None:
        """Find or start the viewer. ``async_mode``: return at once and do it in a thread."""
        if self._thread is not None or self._settled.is_set():
            return
        if async_mode:
            self._thread = threading.Thread(
                target=self._start, name=f"platestream-viewer-start-{self.port}", daemon=True
            )
            self._thread.start()
        else:
            self._start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the viewer is ready and queued images went out; False on timeout/error."""
        return self._settled.wait(timeout_s) and self._ready

    @property
    def queued(self) -> int:
        """Images waiting for the viewer to be ready."""
        return self._queued

    @property
    def is_running(self) -> bool:
        """Our viewer process is alive, or a viewer answers on our port."""
        if self.process is not None and self.process.poll() is None:
            return True
        return ping(self.host, self.port, 1.0, self.keys) is not None

    def _start(self) -> None:
        try:
            self.pong = self._find_or_spawn()
            self._connect_and_flush()
        except Exception as err:  # reported through wait_ready() and .error
            self.error = f"{type(err).__name__}: {err}"
            log.error("viewer on port %s: %s", self.port, self.error)
        finally:
            self._settled.set()

    def _find_or_spawn(self) -> Pong:
        deadline = time.monotonic() + self.startup_timeout_s
        first = self.port
        for port in range(first, first + max(1, self.port_attempts)):
            state = inspect(port, self.host, keys=self.keys)
            if state.holder is Holder.FOREIGN:
                if self.on_conflict == "fail":
                    raise PortConflict(
                        f"ports {port}/{port + 1000} are held by another program; "
                        "choose another napari_port"
                    )
                log.warning("ports %s/%s are taken by another program", port, port + 1000)
                continue
            self.port = port
            if state.holder is Holder.VIEWER and state.pong is not None and state.pong.state.ready:
                log.info("reusing viewer %s on port %s", state.pong.viewer_id, port)
                return state.pong
            if state.holder is Holder.SILENT_VIEWER:
                self._quit_silent(state)
            return self._spawn_and_wait(port, deadline)
        raise PortConflict(f"no free port pair in {first}..{first + self.port_attempts - 1}")

    def _quit_silent(self, state: PortState) -> None:
        process = state.process
        assert process is not None
        log.warning(
            "viewer pid %s on port %s does not answer: stopping it", process.pid, state.port
        )
        if not procs.terminate(process, self.quit_timeout_s):
            raise ViewerError(f"could not stop the silent viewer pid {process.pid}")

    def _spawn_and_wait(self, port: int, deadline: float) -> Pong:
        if not is_local(self.host):
            raise ViewerError(f"no viewer answers on {self.host}:{port}; start it there")
        if not is_loopback(self.bind_host) and not self.keys:
            raise InsecureBindError(
                f"a viewer bound to {self.bind_host} is reachable from other hosts: give it "
                "a key directory (--keys, made with 'platestream keys init') so it requires "
                "CURVE"
            )
        self.process = spawn_viewer(
            port,
            self.title,
            persistent=self.persistent,
            headless=self.headless,
            extra=[*store_arguments(self.config), *self.extra_arguments],
            bind_host=self.bind_host,
            keys=self.keys,
        )
        while time.monotonic() < deadline:
            wait = min(1.0, max(0.05, deadline - time.monotonic()))
            pong = ping(self.host, port, wait, self.keys)
            if pong is not None and pong.state.ready:
                return pong
            code = self.process.poll()
            if code == PORT_TAKEN:  # someone took the port meanwhile: maybe a viewer
                state = inspect(port, self.host, keys=self.keys)
                if state.holder is Holder.VIEWER and state.pong is not None:
                    return state.pong
                raise PortConflict(f"port {port} was taken while the viewer started")
            if code is not None:
                raise ViewerError(f"the viewer exited with status {code}; see its log")
        raise ViewerError(f"no viewer answered on port {port} within {self.startup_timeout_s} s")

    def _connect_and_flush(self) -> None:
        with self._lock:
            if self._queue:  # images are waiting: connect now and send them, in order
                backend = self._connect()
                while self._queue:
                    arrays, targets, step = self._queue.popleft()
                    self._queued -= len(targets)
                    backend.save_batch(arrays, targets, **step)
            self._ready = True

    def _connect(self) -> NapariStreamingBackend:
        """The streaming backend, connected (handshake done); made on first use, so a
        manager that only starts or inspects a viewer is no producer of it."""
        if self._backend is not None:
            return self._backend
        config = dataclasses.replace(self.config, napari_port=self.port)
        keystore = KeyStore(Path(self.keys)) if self.keys else None
        backend = NapariStreamingBackend(config, keystore=keystore)
        if not backend.connect(timeout_s=max(1.0, self.startup_timeout_s / 4)):
            backend.close()
            raise ViewerError(f"no handshake with the viewer on port {self.port}")
        if self._layout:
            backend.declare_layout(self._layout)
        self._backend = backend
        return backend

    # ----------------------------------------------------------------- streaming

    def declare_layout(self, layout: Mapping[str, Iterable[object]]) -> None:
        """Tell the viewer the plate's layout before streaming it (component -> the values
        to come), so it sizes each layer once; see
        ``NapariStreamingBackend.declare_layout``. Works before the viewer is ready."""
        checked = checked_layout(layout)  # a bad value is refused here, not later
        with self._lock:
            self._layout = checked
            if self._ready:
                self._connect().declare_layout(checked)

    def save_batch(
        self,
        arrays: Sequence[Any],
        targets: Sequence[Target],
        *,
        config: Any = None,
        step_index: int = 0,
        step_name: str = "",
    ) -> SaveReport | None:
        """Stream ``arrays[i]`` described by ``targets[i]`` - an ``ImageItem``, component
        values (``{"well": "A01", "channel": "DAPI"}``: the shape and dtype come from the
        array, the step from ``step_index``/``step_name``) or a file path (read by its
        microscope's naming) - as the backend does, with the signature it has.
        ``config``: a (partial) ``NapariStreamingConfig`` for these images (colormap,
        layering...), over this viewer's; they go to this viewer whatever its port says.
        Before the viewer is ready they are copied into a bounded queue (oldest dropped
        beyond ``queue_limit`` images) and None is returned."""
        if len(arrays) != len(targets):
            raise ValueError(f"{len(arrays)} arrays but {len(targets)} targets")
        step: dict[str, Any] = {"step_index": step_index, "step_name": step_name}
        if config is not None:  # this viewer's address wins over the config's
            step["config"] = dataclasses.replace(
                config, napari_host=self.host, napari_port=self.port
            )
        with self._lock:
            if self._closed:
                raise RuntimeError("this visualizer is closed")
            if self._ready:
                return self._connect().save_batch(list(arrays), list(targets), **step)
            copies = [np.array(array, copy=True) for array in arrays]
            self._queue.append((copies, list(targets), step))
            self._queued += len(targets)
            while self._queued > self.queue_limit and self._queue:
                _, dropped, _ = self._queue.popleft()
                self._queued -= len(dropped)
                self.dropped_before_ready += len(dropped)
            return None

    # ------------------------------------------------------------------- control

    def _request(self, message: Any, timeout_s: float = 5.0) -> Any:
        try:
            reply = request_once(
                self.host,
                self.port,
                message,
                timeout_s=timeout_s,
                curve=credentials(self.host, self.keys),
            )
        except (ControlTimeout, WireError) as err:
            raise ViewerError(f"viewer on port {self.port}: {err}") from err
        if isinstance(reply.message, Error):
            raise ViewerError(f"viewer on port {self.port}: {reply.message.message}")
        return reply

    def status(self, timeout_s: float = 2.0) -> StatusReport | None:
        try:
            report = self._request(StatusRequest(), timeout_s).message
        except ViewerError:
            return None
        return report if isinstance(report, StatusReport) else None

    def wait_shown(self, count: int, timeout_s: float = 120.0) -> Shown | None:
        """Wait until the viewer accounted for ``count`` images in all - shown, or dropped
        and counted - or ``timeout_s`` passed. The viewer holds each request until then
        (``wait_shown``, at most 30 s each): no polling. The last ``Shown``, or None if the
        viewer does not answer."""
        deadline = time.monotonic() + timeout_s
        last: Shown | None = None
        while True:
            wait = max(0.0, min(30.0, deadline - time.monotonic()))
            try:
                reply = self._request(WaitShown(count=count, wait_s=wait), wait + 5.0).message
            except ViewerError:
                return last
            if isinstance(reply, Shown):
                last = reply
            if last is None or last.accounted >= count or wait <= 0:
                return last

    def snapshot(self, path: str | os.PathLike[str], timeout_s: float = 30.0) -> Path:
        """Save a PNG of the viewer's canvas at ``path``."""
        reply = self._request(Snapshot(), timeout_s)
        if not isinstance(reply.message, SnapshotReply) or len(reply.frames) != 1:
            raise ViewerError("the viewer sent no snapshot")
        target = Path(path)
        target.write_bytes(reply.frames[0])
        return target

    def clear(self, timeout_s: float = 10.0) -> None:
        self._request(Clear(), timeout_s)

    def layers(self, timeout_s: float = 20.0) -> LayersReport:
        """What the viewer shows: every layer (name, shape, dtype, colormap...), the
        sliders and the caption, once what has arrived is shown."""
        reply = self._request(LayersRequest(), timeout_s)
        if not isinstance(reply.message, LayersReport):
            raise ViewerError(f"the viewer did not report its layers: {reply.message}")
        return reply.message

    def mark_failed(
        self, wells: Sequence[str], step_name: str = "", reason: str = "", timeout_s: float = 5.0
    ) -> None:
        """Tell the viewer these wells failed in step ``step_name`` (empty: every step):
        its plate overview marks them."""
        self._request(
            WellsFailed(step_name=step_name, wells=tuple(wells), reason=reason[:4096]), timeout_s
        )

    def close(self) -> None:
        """Stop streaming (the viewer keeps running if it is persistent)."""
        with self._lock:
            backend, self._backend, self._ready = self._backend, None, False
            self._closed = True
        if backend is not None:
            backend.close()
        if self._thread is not None:
            self._thread.join(self.startup_timeout_s)
        if not self.persistent:
            self.stop()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Shut the viewer down: ask it, then SIGTERM/SIGKILL its verified pid. True once
        no viewer is left on the port."""
        wait_s = self.quit_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            backend, self._backend, self._ready = self._backend, None, False
            self._closed = True
        if backend is not None:
            backend.close()
        stopped = stop_viewer(self.host, self.port, wait_s, self.keys).gone
        if self.process is not None:
            try:
                self.process.wait(wait_s)  # reap our child
            except subprocess.TimeoutExpired:
                stopped = False
        return stopped

    def __enter__(self) -> NapariStreamVisualizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class StopResult:
    """What ``stop_viewer`` did: ``gone`` is True only once no viewer is left on the port."""

    gone: bool
    how: str  # one sentence for the user

    def __bool__(self) -> bool:
        return self.gone


def stop_viewer(
    host: str, port: int, timeout_s: float = 5.0, keys: str | Path | None = None
) -> StopResult:
    """Stop the platestream viewer on ``port`` (identified first); never anything else.
    On another host it can only be asked (``Shutdown``), then watched until it is gone."""
    state = inspect(port, host, keys=keys)
    process = state.process
    if state.holder is Holder.FREE:
        if state.record is not None:  # a viewer that died (kill -9) left its record behind
            remove_record(port)  # (its pid is dead, or another process now: never signalled)
            return StopResult(True, f"the viewer on port {port} had died; its record is removed")
        return StopResult(True, f"no viewer on port {port}")
    if state.holder is Holder.FOREIGN or process is None:
        return StopResult(
            False,
            f"port {port} is held by something that is not your platestream viewer; "
            "nothing was stopped",
        )
    if not is_local(host):
        return _stop_remote(host, port, state, timeout_s, keys)
    if state.pong is not None:
        try:
            request_viewer(host, port, Shutdown(viewer_id=state.pong.viewer_id), timeout_s, keys)
            if procs.wait_exit(process.pid, timeout_s):
                return StopResult(True, f"the viewer on port {port} (pid {process.pid}) stopped")
        except (ControlTimeout, WireError):
            pass
    if procs.terminate(process, timeout_s):
        return StopResult(
            True,
            f"the viewer on port {port} (pid {process.pid}) did not stop when asked; "
            "it was ended with a signal after checking its pid",
        )
    alive = pid_alive(process.pid)
    return StopResult(
        not alive,
        f"the viewer on port {port} (pid {process.pid}) still runs" if alive else "gone",
    )


def _stop_remote(
    host: str, port: int, state: PortState, timeout_s: float, keys: str | Path | None
) -> StopResult:
    """Ask the viewer on another host to shut down; gone once its control port stops
    answering within ``timeout_s`` (its pid means nothing here: never signalled)."""
    assert state.pong is not None
    curve = credentials(host, keys)
    try:
        request_once(
            host, port, Shutdown(viewer_id=state.pong.viewer_id), timeout_s=timeout_s, curve=curve
        )
    except (ControlTimeout, WireError) as err:
        return StopResult(False, f"the viewer on {host}:{port} did not answer the shutdown: {err}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ping(host, port, 0.5, keys) is None and not listening(port + 1000, host):
            return StopResult(True, f"the viewer on {host}:{port} stopped")
        time.sleep(0.1)  # a remote viewer's exit cannot be waited on; check a few times
    return StopResult(False, f"the viewer on {host}:{port} still answers after {timeout_s} s")


def open_viewer(
    port: int | None = None,
    title: str = "platestream",
    config: Any = None,
    *,
    persistent: bool = True,
    headless: bool = False,
    show: Mapping[str, Iterable[Any]] | None = None,
) -> NapariStreamVisualizer:
    """A viewer to stream to, ready: the one answering on ``port`` (default: the config's
    ``napari_port``, 5555), else a new one started there - or on the next free port when
    something else holds it. Returns its handle (``save_batch``, ``declare_layout``,
    ``status``, ``layers``, ``snapshot``, ``clear``, ``close``, ``stop``). ``config``: a
    ``NapariStreamingConfig`` (its store, memory, overview and display settings);
    ``persistent``: the viewer outlives this process; ``headless``: it runs on a private
    X server; ``show``: it shows only part of the stream (see ``NapariStreamVisualizer``).
    Raises ``ViewerError`` if no viewer starts."""
    settings: Any = config if config is not None else NapariStreamingConfig()
    if port is not None:
        settings = dataclasses.replace(settings, napari_port=port)
    visualizer = NapariStreamVisualizer(
        settings, title=title, persistent=persistent, headless=headless, show=show
    )
    visualizer.start_viewer(async_mode=False)
    if visualizer.pong is None:
        error = visualizer.error or "the viewer did not start"
        visualizer.close()
        raise ViewerError(error)
    return visualizer


def open_run(
    run: str | os.PathLike[str],
    config: Any = None,
    *,
    title: str | None = None,
    persistent: bool = True,
    headless: bool = False,
) -> NapariStreamVisualizer:
    """Open a run of the run store in a new viewer - ``platestream open RUN`` from Python.

    ``run`` is a run folder, or a run's name (or a unique prefix of it) in ``store_dir``.
    The viewer takes the first free port from ``napari_port`` on (a viewer already there
    shows its own run), shows the run's layers lazily, and goes on writing the run when
    this visualizer (or any producer on its port) streams more images. Raises
    ``StoreError`` for a folder that is not a run, ``ViewerError`` if no viewer starts.
    """
    from platestream.store import read_run_info, resolve_run, store_dir_of

    resolved = resolve_current(config if config is not None else NapariStreamingConfig()).value
    path = resolve_run(str(run), store_dir_of(resolved.store_dir))
    first = resolved.napari_port
    port = free_port(first)
    if port is None:
        raise PortConflict(f"no free port pair in {first}..{first + 19}")
    settings = dataclasses.replace(resolved, napari_port=port, store="disk")
    name = title or str(read_run_info(path).get("title") or path.name)
    visualizer = NapariStreamVisualizer(
        settings, title=name, persistent=persistent, on_conflict="fail", headless=headless
    )
    visualizer.extra_arguments = ["--run", str(path)]
    visualizer.start_viewer(async_mode=False)
    if visualizer.pong is None:
        raise ViewerError(visualizer.error or f"no viewer started for {path}")
    return visualizer
