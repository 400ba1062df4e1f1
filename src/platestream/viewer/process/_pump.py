"""The GUI-thread side of a viewer: arrivals -> plans -> napari, at most once per frame.

The receiver calls ``on_arrival`` in its own thread; that emits a queued Qt signal (once per
burst, not per batch), and the GUI thread schedules an apply: at once if the last apply
was at least a frame ago, else at the start of the next frame. An apply drains *everything*
queued, plans it and tells napari once per layer. So the display rate caps the napari
work, never the throughput: there is no polling timer, and nothing waits for a tick.

Control requests that touch the GUI (``clear``, ``snapshot``, ``shutdown``) arrive in the
receive thread too; they are handed to the GUI thread the same way, and answered from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from qtpy import QtCore
from qtpy.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, QThread, QTimer
from qtpy.QtGui import QImage
from qtpy.QtWidgets import QApplication

from platestream.backend import DEFER, ControlRequest, Deferred, ReceivedBatch, Receiver
from platestream.schemas import (
    DropReason,
    Error,
    ErrorCode,
    Message,
    Ok,
    Snapshot,
    SnapshotReply,
    WellsFailed,
)

from ..layer_model import NapariApplier, Plans, display_key, layers_report
from ._display_stats import DisplayStats
from ._slots import never_raises

log = logging.getLogger(__name__)
Signal: Any = QtCore.Signal  # type: ignore[attr-defined]  # qtpy's alias of pyqtSignal
FRAME_S = 1 / 60  # at most one apply per display frame
REOPEN_SLICE = 2048  # stored planes placed per Qt event after a reopened run's first view
MAX_QUEUED_SNAPSHOTS = 4  # more waiting for the GUI are refused at once ("busy")


def assert_gui_thread() -> None:
    """Layers are napari's, and napari's are the Qt main thread's."""
    app = QApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("napari layers touched outside the Qt main thread")


class Pump(QObject):
    arrived = Signal()
    gui_request = Signal(object)  # a ControlRequest for the GUI thread
    receiver_failed = Signal()  # the receive thread ended by a failure (emitted there)

    def __init__(
        self,
        viewer: Any,
        receiver: Receiver,
        stats: DisplayStats,
        frame_s: float = FRAME_S,
        plans: Plans | None = None,
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.receiver = receiver
        self.stats = stats
        self.frame_s = frame_s
        self.plans = plans if plans is not None else Plans()
        self.applier = NapariApplier(viewer, self.plans, check_thread=assert_gui_thread)
        self.on_shutdown: Callable[[], None] = lambda: None
        self.caption: Callable[[], str] = lambda: ""  # the slice caption (panel)
        self.overview: Any = None  # the plate overview layers (process._overview), if shown
        self.after_layout: Callable[[], None] = lambda: None  # layers or axes changed
        self.after_flush: Callable[[], None] = lambda: None  # images went into the layers
        self.on_clear: Callable[[], None] = lambda: None  # a clear request emptied the viewer
        self._last_apply = 0.0
        self.closed = False
        self._reopening: deque[tuple[Any, list[Any]]] = deque()  # (plate, part): see reopen
        self._signalled = threading.Event()  # an arrival signal is on its way
        self._queued_lock = threading.Lock()
        self._snapshots_queued = 0  # snapshot requests on their way to the GUI thread
        self.snapshots_refused = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.apply)
        self.arrived.connect(self._schedule, Qt.ConnectionType.QueuedConnection)
        self.gui_request.connect(self._on_gui_request, Qt.ConnectionType.QueuedConnection)
        receiver.on_arrival(self._arrival)
        for kind in ("clear", "snapshot", "shutdown", "layers", "wells_failed"):
            receiver.handle(kind, self._to_gui)
        source = self.plans.store.source
        if hasattr(source, "on_relief"):  # the disk caught up: take what waited
            source.on_relief = self._arrival

    # ------------------------------------------------------------ receive thread

    def _arrival(self) -> None:
        if not self._signalled.is_set():
            self._signalled.set()
            self.arrived.emit()

    def _to_gui(self, request: ControlRequest) -> Message | Deferred:
        if request.message.TYPE == "snapshot":
            with self._queued_lock:
                if self._snapshots_queued >= MAX_QUEUED_SNAPSHOTS:
                    self.snapshots_refused += 1
                    return Error(
                        code=ErrorCode.REFUSED,
                        message=f"busy: {self._snapshots_queued} snapshots already queued",
                    )
                self._snapshots_queued += 1
        self.gui_request.emit(request)
        # The receiver stops serving right after a shutdown's handler: answer it here.
        return Ok() if request.message.TYPE == "shutdown" else DEFER

    # ---------------------------------------------------------------- GUI thread

    @never_raises
    def _schedule(self) -> None:
        if self.closed or self._timer.isActive():
            return
        wait_s = self._last_apply + self.frame_s - time.monotonic()
        self._timer.start(max(0, int(wait_s * 1000)))

    def close(self) -> None:
        """Stop applying (before the receiver closes): later signals and timers do nothing."""
        self.closed = True
        self._timer.stop()
        if self.overview is not None:
            self.overview.close()

    def apply(self) -> int:
        """Drain the receiver, plan, update napari; returns the images shown.

        A Qt slot: no exception leaves it (one escaping a slot aborts PyQt6). Every image
        taken is shown, or counted under a reason (``_account``).
        """
        assert_gui_thread()
        if self.closed:
            return 0
        self._signalled.clear()  # arrivals from now on signal again
        if self._disk_lags():
            return 0  # images stay queued: producers wait (lossless) or count queue_full
        # With a disk store, take only what the memory budget has room for: the rest waits
        # in the receive queue (in the producers' shared memory, not in this process).
        room: int | None = getattr(self.plans.store.source, "room", None)
        batches = self.receiver.take(max_bytes=room)
        if room is not None and len(self.receiver.queue):
            self._schedule()  # the rest, at the next frame (or on the disk's relief)
        try:
            for layout in self.receiver.take_layouts():  # before the images they announce
                self.plans.declare(layout)
            self._plan(batches)
        except Exception:  # a bug: it costs this frame's images, never the viewer
            log.exception("planning %d batches failed", len(batches))
            failed = True
        else:
            failed = False
        shown = self._account(batches, failed)
        try:
            return self._show(batches, shown)
        except Exception:  # napari refused an update: the pixels are in the layers' arrays
            log.exception("updating napari failed; the layers show it at the next refresh")
            return 0

    def _disk_lags(self) -> bool:
        """The memory budget has no room for the oldest queued batch while planes wait for
        the disk: take nothing now; the writer's relief signal (``on_relief``) schedules
        the next apply."""
        lags = getattr(self.plans.store.source, "lags", None)
        return lags is not None and lags(self.receiver.queue.head_bytes())

    def reopen(self, plates: list[Any]) -> int:
        """Show the planes a reopened run holds (``StoredPlate``s: images by reference);
        returns how many. Nothing is read from disk until napari draws it.

        The first view comes at once: each plate's layout is declared (layers are made at
        their full size), its first well's planes are placed and napari is told; the
        other planes are made into images and placed in slices of ``REOPEN_SLICE``
        between Qt events (a plane not placed yet shows as "not yet")."""
        count = 0
        for plate in plates:
            self.plans.declare(plate.layout)
            self._place(plate.display, plate.first)
            for start in range(0, len(plate.rest), REOPEN_SLICE):
                self._reopening.append((plate, plate.rest[start : start + REOPEN_SLICE]))
            count += len(plate.first) + len(plate.rest)
        self.applier.flush()
        while self.applier.busy:
            self.applier.flush()
        if count:  # a reopened run starts at its first well and site, not napari's middle
            dims = self.viewer.dims
            dims.current_step = (0,) * int(dims.ndim)
            QTimer.singleShot(0, self.viewer.reset_view)  # fit once the sliders are laid out
        self.after_layout()
        if self._reopening:
            QTimer.singleShot(0, self._reopen_more)
        return count

    def _place(self, display: Any, images: list[Any]) -> None:
        self.plans.add(display, images)
        self.plans.store.take_shown()
        for reason, item in self.plans.take_dropped():
            log.warning("a stored plane cannot be shown (%s): %s", reason.value, item)

    def _reopen_more(self) -> None:
        """Place the next slice of a reopened run's planes (a Qt slot: never raises)."""
        if self.closed or not self._reopening:
            return
        plate, part = self._reopening.popleft()
        try:
            self._place(plate.display, plate.images(part))
            self.applier.flush()
        except Exception:
            log.exception("reopening: %d stored planes not placed", len(part))
        if self._reopening:
            QTimer.singleShot(0, self._reopen_more)
        else:
            self.after_layout()

    def _show(self, batches: list[ReceivedBatch], shown: int) -> int:
        """Record what went into the layers, then tell napari."""
        self._last_apply = time.monotonic()
        if batches:
            now_wall = time.time()
            self.stats.record_display(shown, [now_wall - b.sent_at for b in batches])
        first_show = not self.applier.layers
        layers_before = len(self.applier.layers)
        was_busy = self.applier.busy
        try:
            changes = self.applier.flush()
        finally:
            if batches or was_busy or len(self.applier.layers) != layers_before:
                self.publish()  # after the flush: the layer count is napari's
            if self.applier.busy:  # layers to create, polygons to give: the next frame goes on
                self._schedule()
        if first_show and changes.created:
            # Fit the view to the first data once Qt has laid out the new sliders (napari
            # fit it while adding, before the canvas shrank). Later, the camera is the user's.
            QTimer.singleShot(0, self.viewer.reset_view)
        if changes:  # layers or axes changed, or planes arrived (the caption's "not yet")
            self.after_layout()
        if changes.images:
            self.after_flush()
        return changes.images

    def publish(self) -> None:
        """Fresh stats for pongs, status reports and the dock."""
        self.stats.sample(
            self.receiver.received_images(),
            len(self.applier.layers),
            self.applier.pending,
            self.applier.shapes_pending,
        )
        self.receiver.display_changed()  # held wait_shown requests look again

    def _account(self, batches: list[ReceivedBatch], failed: bool = False) -> int:
        """Give leased slots back, and count every image of ``batches``: shown (returned),
        or dropped by reason - rejected or failed (the plans), torn (rewritten while lent),
        superseded (a newer image of its plane came in the same frame), or, when this
        frame failed, display_failed."""
        producers = {id(i.item): b.producer for b in batches for i in b.images}
        settled: set[int] = set()
        for reason, item in self.plans.take_dropped():
            settled.add(id(item))
            self.receiver.count_dropped(reason, 1, producers.get(id(item)))
        for item in self.plans.store.take_torn():
            settled.add(id(item))
            self.receiver.count_dropped(DropReason.OVERWRITTEN, 1, producers.get(id(item)))
        shown = {id(item) for item in self.plans.store.take_shown()}
        rest = DropReason.DISPLAY_FAILED if failed else DropReason.SUPERSEDED
        for batch in batches:
            for image in batch.images:
                key = id(image.item)
                if key not in shown and key not in settled:
                    self.receiver.count_dropped(rest, 1, batch.producer)
            batch.release()
        return len(shown & producers.keys())

    def _plan(self, batches: list[ReceivedBatch]) -> None:
        # Consecutive batches with one display config are planned in one call (cheaper).
        run: list[Any] = []
        key: object = None
        display: object = None
        for batch in batches:
            batch_key = display_key(batch.display)
            if run and batch_key != key:
                self._add(display, run)
                run = []
            key, display = batch_key, batch.display
            run.extend(batch.images)
        if run:
            self._add(display, run)

    def _add(self, display: object, images: list[Any]) -> None:
        self.plans.add(display, images)  # what it cannot show, it counts (take_dropped)

    def _on_gui_request(self, request: ControlRequest) -> None:
        if request.message.TYPE == "snapshot":
            with self._queued_lock:
                self._snapshots_queued -= 1
        if self.closed:
            return
        if request.message.TYPE == "shutdown":
            self.on_shutdown()
            return
        try:
            reply = self._answer(request)
        except Exception as err:  # the request fails, the viewer carries on
            log.exception("control request %s failed", request.message.TYPE)
            reply = Error(code=ErrorCode.INTERNAL, message=f"{type(err).__name__}: {err}")
            request.reply(reply)
            return
        if isinstance(reply, tuple):
            request.reply(reply[0], reply[1])
        else:
            request.reply(reply)

    def _answer(self, request: ControlRequest) -> Message | tuple[Message, tuple[bytes, ...]]:
        kind = request.message.TYPE
        if kind == "clear":
            self._reopening.clear()  # a reopened run's planes not placed yet go too
            self.applier.clear()
            self.on_clear()
            for batch in self.receiver.take():  # anything that slipped in between: cleared too
                batch.release()
                self.receiver.count_dropped(DropReason.CLEARED, len(batch.images), batch.producer)
            self.stats.reset()
            return Ok()
        if kind == "snapshot":
            assert isinstance(request.message, Snapshot)
            self._apply_all()  # show what has arrived before taking the picture
            png = self.snapshot_png(request.message.canvas_only)
            return SnapshotReply(nbytes=len(png)), (png,)
        if kind == "layers":
            self._apply_all()
            return layers_report(self.viewer, self.applier.layers, self.caption())
        if kind == "wells_failed":
            assert isinstance(request.message, WellsFailed)
            failed = request.message
            log.warning(
                "wells %s failed in step %r: %s", failed.wells, failed.step_name, failed.reason
            )
            overviews = self.plans.store.overviews
            if overviews is not None:
                overviews.mark_failed(failed.step_name, failed.wells)
                if self.overview is not None:
                    self.overview.update(force=True)
            return Ok()
        return Error(code=ErrorCode.UNSUPPORTED, message=kind)

    def _apply_all(self) -> None:
        """Apply, then create every layer still waiting (a picture or report of all)."""
        self.apply()
        while self.applier.busy:
            self.apply()
        if self.overview is not None:  # and the plate overview, not at its next redraw
            self.overview.update(force=True)

    def snapshot_png(self, canvas_only: bool = True) -> bytes:
        pixels = self.viewer.screenshot(canvas_only=canvas_only, flash=False)
        return png_bytes(pixels)


def png_bytes(rgba: Any) -> bytes:
    """An (h, w, 4) uint8 array as PNG, encoded by Qt (no extra dependency)."""
    height, width = rgba.shape[:2]
    data = rgba.copy(order="C")
    image = QImage(data.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(array.data())
