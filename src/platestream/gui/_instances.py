"""The instance list's model: every viewer of this machine, the remote ones a user added,
and the ones this GUI is starting - surveyed off the GUI thread once a second.

Viewers are found as ``platestream viewer list`` finds them (the manager's ``survey``:
their records, any port) and acted on with the manager's functions (``stop_viewer``,
``kill_viewer`` after ``is_viewer``, control requests): nothing here knows a second way to
find, stop or reach a viewer. Every network call runs in a worker thread; results come back
through Qt signals, so the window never waits on a viewer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, QTimer

from platestream.backend import KeyStore, is_local
from platestream.config import NapariStreamingConfig
from platestream.schemas import Clear, Error, Snapshot, SnapshotReply
from platestream.viewer.manager import (
    GREEN,
    RED,
    Address,
    Holder,
    NapariStreamVisualizer,
    ViewerInfo,
    inspect,
    kill_viewer,
    local_addresses,
    request_viewer,
    stop_viewer,
    survey,
)

from ._qt import Signal

log = logging.getLogger(__name__)

STARTING, FAILED = "starting", "failed"
REFRESH_MS = 1000  # at most once a second: a dead viewer shows red within ~1.5 s


@dataclass(frozen=True)
class Row:
    """One line of the instance list."""

    address: Address
    status: str  # GREEN, RED, STARTING or FAILED
    pid: int = 0
    title: str = ""
    note: str = ""
    queue: int = 0  # batches in the viewer's queue + images waiting for it to start
    received: int = 0
    displayed: int = 0
    dropped: int = 0
    rate: float = 0.0

    @property
    def label(self) -> str:
        return self.address.label

    @property
    def port(self) -> int:
        return self.address.port


def row_of(info: ViewerInfo, waiting: int = 0) -> Row:
    counts = info.counts()
    return Row(
        info.address,
        info.status,
        info.pid,
        info.title,
        info.note,
        int(counts.get("queue", 0)) + waiting,
        int(counts.get("received", 0)),
        int(counts.get("displayed", 0)),
        int(counts.get("dropped", 0)),
        float(counts.get("rate", 0.0)),
    )


class Instances(QObject):
    """The viewers, refreshed once a second; actions run in worker threads and report a
    sentence through ``message``."""

    changed = Signal()
    message = Signal(str)
    _surveyed = Signal(object)
    _done = Signal(str)

    def __init__(self, refresh_ms: int = REFRESH_MS, ping_timeout_s: float = 0.5) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.remote: list[Address] = []
        self.launched: dict[int, NapariStreamVisualizer] = {}  # port -> handle (ours)
        self.ping_timeout_s = ping_timeout_s
        self._survey_pool = ThreadPoolExecutor(1, "platestream-gui-survey")
        self._action_pool = ThreadPoolExecutor(4, "platestream-gui-action")
        self._busy = False
        self._closed = False
        self._surveyed.connect(self._on_surveyed)
        self._done.connect(self._on_done)
        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    # ----------------------------------------------------------------- the list

    def refresh(self) -> None:
        """Survey every known viewer now (in the survey thread), unless one is running."""
        if self._busy or self._closed:
            return
        self._busy = True
        ports = set(self.launched)
        addresses = local_addresses(ports) + list(self.remote)
        future = self._survey_pool.submit(survey, addresses, self.ping_timeout_s)
        future.add_done_callback(self._surveyed_in_thread)

    def _surveyed_in_thread(self, future: Future[list[ViewerInfo]]) -> None:
        if self._closed:
            return
        try:
            infos = future.result()
        except Exception as err:  # a survey that failed is an empty one, said once
            log.exception("survey failed")
            self.message.emit(f"could not list the viewers: {err}")
            infos = []
        self._surveyed.emit(infos)

    def _on_surveyed(self, infos: list[ViewerInfo]) -> None:
        self._busy = False
        found = {info.address: info for info in infos}
        rows = []
        for address, info in found.items():
            handle = self.launched.get(address.port) if address.host == "127.0.0.1" else None
            waiting = handle.queued if handle is not None else 0
            rows.append(row_of(info, waiting))
        for port, handle in self.launched.items():  # ours, not answering yet
            address = Address("127.0.0.1", port)
            if address in found and found[address].status == GREEN:
                continue
            if handle.error:
                status, note = FAILED, handle.error
            elif address in found:
                continue  # it answered once and went red: shown as the survey saw it
            else:
                status, note = STARTING, "waiting for its first pong"
            rows.append(Row(address, status, title=handle.title, note=note, queue=handle.queued))
        rows.sort(key=lambda row: (row.address.host != "127.0.0.1", row.address.host, row.port))
        self.rows = rows
        self.changed.emit()

    def row(self, label: str) -> Row | None:
        return next((row for row in self.rows if row.label == label), None)

    # ------------------------------------------------------------------ actions

    def _run(self, job: Callable[[], str]) -> None:
        def work() -> None:
            try:
                text = job()
            except Exception as err:  # every failure becomes a sentence, never a crash
                log.exception("GUI action failed")
                text = f"{type(err).__name__}: {err}"
            if not self._closed:
                self._done.emit(text)

        self._action_pool.submit(work)

    def _on_done(self, text: str) -> None:
        self.message.emit(text)
        self.refresh()

    def launch(self, port: int, title: str, config: Any = None) -> NapariStreamVisualizer:
        """Start a viewer on ``port`` (asynchronously: its row says "starting" until the
        first pong). ``config``: a NapariStreamingConfig (store, overview, display)."""
        settings: Any = config if config is not None else NapariStreamingConfig()
        settings = dataclasses.replace(settings, napari_port=port)
        handle = NapariStreamVisualizer(settings, title=title, persistent=True, on_conflict="fail")
        self.launched[port] = handle
        handle.start_viewer(async_mode=True)
        self.message.emit(f"starting a viewer on port {port}")
        self.refresh()
        return handle

    def stream_handle(self, address: Address) -> tuple[NapariStreamVisualizer, bool]:
        """A handle to stream to the viewer at ``address`` and whether the caller owns it
        (closes it when done): the handle of a viewer this GUI launched (its queue holds
        images until the viewer answers; not the caller's), else a new one that reuses the
        viewer answering there."""
        if address.host == "127.0.0.1" and address.port in self.launched:
            return self.launched[address.port], False
        settings = NapariStreamingConfig(napari_host=address.host, napari_port=address.port)
        handle = NapariStreamVisualizer(settings, on_conflict="fail", keys=address.keys or None)
        handle.start_viewer(async_mode=True)
        return handle, True

    def add_remote(self, host: str, port: int, viewer_key: Path | None = None) -> None:
        """Watch the viewer at ``host:port``; ``viewer_key``: its public key file, trusted
        in the key store (as ``platestream keys trust HOST FILE`` does)."""
        if viewer_key is not None:
            KeyStore().trust(host, viewer_key)
        address = Address(host, port)
        if address not in self.remote:
            self.remote.append(address)
        self.refresh()

    def quit(self, row: Row) -> None:
        """Ask the viewer to shut down (pong-verified), then its verified pid."""
        address = row.address

        def job() -> str:
            result = stop_viewer(address.host, address.port, 5.0, address.keys or None)
            if result.gone:
                self.launched.pop(address.port, None)
                if address in self.remote:
                    self.remote.remove(address)
            return result.how

        self._run(job)

    def force_kill(self, row: Row) -> None:
        """SIGKILL the viewer - only after its pid proves to be that viewer, on this machine."""
        address = row.address

        def job() -> str:
            if not is_local(address.host):
                return f"{address.label} is on another host: only quit can stop it"
            state = inspect(address.port, address.host, keys=address.keys or None)
            if state.holder in (Holder.FREE, Holder.FOREIGN) or state.process is None:
                return f"no platestream viewer on port {address.port}: nothing killed"
            if not kill_viewer(state.process):
                return f"pid {state.process.pid} is not that viewer any more: nothing killed"
            self.launched.pop(address.port, None)
            return f"killed viewer pid {state.process.pid} on port {address.port}"

        self._run(job)

    def _request(self, address: Address, message: Any, timeout_s: float) -> Any:
        reply = request_viewer(address.host, address.port, message, timeout_s, address.keys or None)
        if isinstance(reply.message, Error):
            raise RuntimeError(reply.message.message)
        return reply

    def snapshot(self, row: Row, path: Path) -> None:
        address = row.address

        def job() -> str:
            reply = self._request(address, Snapshot(), 30.0)
            if not isinstance(reply.message, SnapshotReply) or len(reply.frames) != 1:
                return f"{address.label}: no snapshot"
            path.write_bytes(reply.frames[0])
            return f"saved {path} ({len(reply.frames[0])} bytes)"

        self._run(job)

    def clear(self, row: Row) -> None:
        address = row.address

        def job() -> str:
            self._request(address, Clear(), 10.0)
            return f"cleared the viewer on {address.label}"

        self._run(job)

    def close(self) -> None:
        """Stop refreshing; viewers this GUI launched keep running (they are persistent)."""
        self._closed = True
        self._timer.stop()
        for handle in self.launched.values():
            handle.close()
        self._survey_pool.shutdown(wait=True, cancel_futures=True)
        self._action_pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["FAILED", "GREEN", "RED", "STARTING", "Instances", "Row"]
