"""The viewer process: ``python -m platestream.viewer.process --port 5555 --title T``.

napari comes up first; then the receiver binds the data and control ports, so the first
pong a manager gets already says ``ready``. It runs until a ``shutdown`` request, the
window is closed, SIGTERM/SIGINT, or (``--exit-with PID``) that process ends - then it
closes its sockets, unmaps every producer pool, removes its record and exits 0. It exits 3
if its ports are taken. The command line carries ``MARKER``; the process manager checks it
(with the process start time) before it ever signals a pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from platestream.layering import parse_show

from ..manager import MARKER, PORT_TAKEN, RECEIVER_FAILED

__all__ = ["MARKER", "PORT_TAKEN", "assemble", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {MARKER}")
    parser.add_argument("--port", type=int, default=5555, help="data port (control: +1000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--title", default="platestream")
    parser.add_argument("--keys", type=Path, help="key directory: require CURVE (remote use)")
    parser.add_argument("--exit-with", type=int, default=0, metavar="PID", help="end with PID")
    parser.add_argument("--hidden", action="store_true", help="do not show the window")
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run a private X server (Xvfb) for as long as this viewer lives",
    )
    parser.add_argument(
        "--store",
        choices=("disk", "memory"),
        default="disk",
        help="disk: write every plane to an OME-Zarr run store, keep a bounded cache in RAM; "
        "memory: RAM only",
    )
    parser.add_argument(
        "--store-dir", default="", help="the folder of runs (default: the user's data dir)"
    )
    parser.add_argument(
        "--run", default="", help="an existing run folder: show it and continue writing it"
    )
    parser.add_argument("--codec", choices=("lz4", "zstd", "none"), default="lz4")
    parser.add_argument("--memory-mb", type=int, default=2048, help="RAM for planes (store = disk)")
    parser.add_argument(
        "--show",
        action="append",
        default=[],
        metavar="COMPONENT=VALUES",
        help="show only part of the stream, e.g. --show well=A01,A02 --show channel=DAPI; "
        "producers send nothing else",
    )
    parser.add_argument(
        "--no-overview",
        dest="overview",
        action="store_false",
        help="no plate overview (by default each step's plate is shown at a glance)",
    )
    parser.add_argument("--overview-tile", type=int, default=96, help="a well's tile, px")
    parser.add_argument(
        "--overview-sites", default="auto", help="sites in a tile: auto or rows x columns (3x3)"
    )
    parser.add_argument(
        "--size",
        default="1200x800",
        help="window size WxH (snapshots do not depend on napari's remembered geometry)",
    )
    return parser


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class _Lifetime:
    """Quits the Qt loop on SIGTERM/SIGINT and when a watched process ends (no polling)."""

    def __init__(self, app: Any, exit_with: int) -> None:
        from qtpy import QtCore

        notifier: Any = QtCore.QSocketNotifier  # the stubs want a sip.voidptr, not an int
        self.app = app
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno())
        self._old_handlers = {
            signum: signal.signal(signum, lambda *_: None)  # the wakeup fd does the work
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        notifier_type = QtCore.QSocketNotifier.Type.Read
        self._signals = notifier(self._read.fileno(), notifier_type)
        self._signals.activated.connect(self._quit)
        self._parent: Any = None
        self._pidfd = -1
        if exit_with:
            try:
                self._pidfd = os.pidfd_open(exit_with)
            except (OSError, AttributeError):  # already gone, or no pidfd: stop at once
                QtCore.QTimer.singleShot(0, app.quit)  # quit() before exec() does nothing
                return
            self._parent = notifier(self._pidfd, notifier_type)
            self._parent.activated.connect(self._quit)

    def _quit(self, *_: Any) -> None:
        logging.getLogger(__name__).info("ending: signal or watched process")
        self.app.quit()

    def close(self) -> None:
        for notifier in (self._signals, self._parent):
            if notifier is not None:
                notifier.setEnabled(False)
        signal.set_wakeup_fd(self._old_fd)
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._read.close()
        self._write.close()
        if self._pidfd >= 0:
            os.close(self._pidfd)


def assemble(
    viewer: Any, receiver: Any, title: str, source: Any = None, overviews: Any = None
) -> tuple[Any, Any]:
    """The pump, status dock and slice caption around a viewer and a receiver; ``source``
    keeps the planes (default: RAM); ``overviews``: the plate overviews (None: none)."""
    from ..layer_model import LayerStore, MemoryPlanes, Plans
    from ._display_stats import DisplayStats
    from ._overview import OverviewLayers
    from ._pump import Pump
    from ._status_dock import SliceCaption, StatusDock

    source = source if source is not None else MemoryPlanes()
    stats = DisplayStats(title)
    stats.store_kind = "disk" if hasattr(source, "status") else "memory"
    if hasattr(source, "status"):
        stats.store_status = source.status
    receiver.report_display(stats.state)
    pump = Pump(viewer, receiver, stats, plans=Plans(LayerStore(source)))
    if overviews is not None:
        pump.plans.store.overviews = overviews
        pump.overview = OverviewLayers(viewer, pump.plans, overviews)
        pump.after_flush = pump.overview.update
        pump.on_clear = pump.overview.clear
    panel = StatusDock(receiver, stats, pump)
    viewer.window.add_dock_widget(panel, name="platestream", area="right")
    caption = SliceCaption(viewer, pump, panel)
    pump.caption = caption.text
    pump.after_layout = caption.update
    return pump, caption


def _open_source(args: argparse.Namespace) -> Any:
    from ..layer_model import open_source

    source = open_source(
        args.store, args.store_dir, args.title, args.codec, args.memory_mb, args.run or None
    )
    error = getattr(source, "error", "")
    if error:
        _emit("warning", message=f"no run store: {error}; planes are kept in RAM only")
    return source


def _reopen(pump: Any, source: Any) -> int:
    """Show what the run store already holds (a reopened or restarted run)."""
    if not hasattr(source, "run") or source.run is None:
        return 0
    from ..layer_model import plates_to_show

    plates = plates_to_show(source)
    return pump.reopen(plates) if plates else 0


def main(argv: Sequence[str] | None = None, on_ready: Callable[[Any], None] | None = None) -> int:
    """Run a viewer until it is told to end; ``on_ready(viewer)`` is for tests."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.show = parse_show(args.show)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    xserver = None
    if args.headless:  # before Qt starts: it reads DISPLAY once
        from ..manager import HeadlessError, start_xvfb

        try:
            xserver = start_xvfb(die_with_parent=True)
        except HeadlessError as err:
            _emit("error", message=str(err))
            return 1
        os.environ["DISPLAY"] = xserver.display
        os.environ.pop("WAYLAND_DISPLAY", None)
    try:
        return _run(args, on_ready)
    finally:
        if xserver is not None:
            xserver.stop()


def _warm_up(viewer: Any, app: Any) -> None:
    """Draw a tiny image and labels layer once, then remove them, before the first pong:
    napari's first layer of a kind builds its GL programs (~350 ms under software GL),
    which the first streamed image would otherwise wait for."""
    import numpy as np

    try:
        layers = [
            viewer.add_image(np.zeros((2, 2), np.uint8), name="warm-up"),
            viewer.add_labels(np.zeros((2, 2), np.int32), name="warm-up labels"),
        ]
        app.processEvents()
        for layer in layers:
            viewer.layers.remove(layer)
    except Exception:  # a viewer that cannot draw still serves; its first layer is slower
        logging.getLogger(__name__).exception("warming the canvas up failed")


def _run(args: argparse.Namespace, on_ready: Callable[[Any], None] | None) -> int:
    import napari
    import zmq
    from qtpy import QtCore
    from qtpy.QtWidgets import QApplication

    from platestream.backend import KeyStore, Receiver, ReceiverOptions, resident_bytes
    from platestream.backend.shm import bound_heap, keep_large_buffers, return_free_memory

    from ..manager import ViewerRecord, remove_record, write_record

    show = args.show  # parsed in main
    viewer = napari.Viewer(title=args.title, show=not args.hidden)
    width, _, height = args.size.partition("x")
    viewer.window.resize(int(width), int(height))
    app: Any = QApplication.instance()
    curve = KeyStore(args.keys).server() if args.keys else None
    try:
        # Zero-copy: the pump copies pixels from the producers' slots straight into the
        # layers, then gives the slots back (one copy instead of two).
        options = ReceiverOptions(
            host=args.host, port=args.port, curve=curve, zero_copy=True, show=show
        )
        bounded = args.store != "memory" and args.memory_mb > 0
        if bounded:  # within viewer_memory_mb: freed planes go back to the system
            bound_heap()
        else:  # inline frames land in reused heap memory, not fresh mmaps
            keep_large_buffers()
        receiver = Receiver(options)
    except zmq.ZMQError as err:
        _emit("error", message=f"cannot listen on {args.host}:{args.port}: {err}")
        viewer.close()
        return PORT_TAKEN
    lifetime = _Lifetime(app, args.exit_with)
    source = _open_source(args)
    if bounded and hasattr(source, "hold"):
        # Once a second: the pages freed between blocks still in use go back to the
        # system, and the plane cache gives up what the rest of the viewer has grown by.
        started = resident_bytes()

        def hold_memory() -> None:
            return_free_memory()
            source.hold(resident_bytes() - started)

        holder = QtCore.QTimer(app)
        holder.timeout.connect(hold_memory)
        holder.start(1000)
    overviews = None
    if args.overview:
        from ..layer_model import Overviews
        from ._overview import max_texture_side

        try:
            overviews = Overviews(args.overview_tile, args.overview_sites, max_texture_side())
        except ValueError as err:
            _emit("warning", message=f"--overview-sites {err}; no plate overview")
    pump, caption = assemble(viewer, receiver, args.title, source, overviews)
    reopened = _reopen(pump, source)

    def shut_down() -> None:
        viewer.close()  # the last window closing ends the loop; quit() in case it hides
        app.quit()

    pump.on_shutdown = shut_down

    def receiver_failed() -> None:
        _emit("error", message="the receive thread failed; the viewer exits (see the log)")
        app.exit(RECEIVER_FAILED)

    pump.receiver_failed.connect(receiver_failed, QtCore.Qt.ConnectionType.QueuedConnection)
    receiver.on_died(pump.receiver_failed.emit)  # emitted in the receive thread
    app.lastWindowClosed.connect(app.quit)  # the user closed the window
    record = ViewerRecord(
        receiver.data_port,
        os.getpid(),
        receiver.viewer_id,
        receiver.started_at,
        args.title,
        host=args.host,
        keys=str(args.keys.resolve()) if args.keys else "",
    )
    # Before the first pong: whoever saw this viewer answer can find its record, even if
    # the viewer is killed right after (``viewer list`` then shows it red).
    write_record(record)
    _warm_up(viewer, app)
    receiver.start()
    _emit(
        "ready",
        data_port=receiver.data_port,
        pid=os.getpid(),
        viewer_id=receiver.viewer_id,
        run=str(source.run.path) if getattr(source, "run", None) is not None else "",
        reopened=reopened,
    )
    if on_ready is not None:
        on_ready(viewer)
    try:
        status = int(app.exec())
    finally:
        caption.overlay = None
        pump.close()
        receiver.close()
        if hasattr(source, "close"):
            source.close()  # what the disk has not taken yet is written before the exit
        remove_record(record.port, record.viewer_id)
        lifetime.close()
        with contextlib.suppress(RuntimeError):  # already closed with its window
            viewer.close()
    _emit("stopped", displayed=pump.stats.displayed, status=status)
    return status
