"""The status dock and the slice caption: what the viewer is receiving, and what it shows.

The dock lists connected producers, images received/displayed/dropped, rates, latency and
queue depth; it is refreshed once a second (the figures are counters, the images
themselves never wait for this timer). The same figures are published for pongs and
status reports. The caption - ``Step 01_raw | Well A01 | Channel DAPI | Site 002`` - names
the slice the sliders point at in the active (else the top visible) streamed layer; it is
shown on the canvas (napari's text overlay) and in the dock.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFormLayout, QLabel, QWidget

from platestream.backend import Receiver
from platestream.layering import describe_show

from ._display_stats import DisplayStats
from ._pump import Pump
from ._slots import never_raises

ROWS = (
    ("address", "listening on"),
    ("producers", "producers"),
    ("received", "images received"),
    ("displayed", "images displayed"),
    ("dropped", "dropped"),
    ("showing", "showing"),
    ("rate", "rate (images/s)"),
    ("latency", "send → display"),
    ("queue", "queue"),
    ("layers", "layers"),
    ("store", "run store"),
    ("unstored", "not stored"),
    ("memory", "plane memory"),
    ("slice", "slice"),
)


class StatusDock(QWidget):
    def __init__(self, receiver: Receiver, stats: DisplayStats, pump: Pump) -> None:
        super().__init__()
        self.setObjectName("platestream status")
        self.receiver = receiver
        self.stats = stats
        self.pump = pump
        layout = QFormLayout(self)
        self.labels: dict[str, QLabel] = {}
        for key, text in ROWS:
            label = QLabel("-")
            label.setWordWrap(True)
            self.labels[key] = label
            layout.addRow(text, label)
        host = receiver.options.host
        self.labels["address"].setText(f"{host}:{receiver.data_port} / {receiver.control_port}")
        self.showing = describe_show(receiver.options.show)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(1000)
        self.refresh()

    @never_raises
    def refresh(self) -> None:
        if self.pump.closed:
            self._timer.stop()
            return
        self.pump.publish()
        state = self.receiver.state()
        display = state.display
        self.labels["producers"].setText(str(state.producers))
        self.labels["received"].setText(str(state.received))
        self.labels["displayed"].setText(str(display.displayed))
        self.labels["dropped"].setText(str(state.dropped))
        self.labels["showing"].setText(
            self.showing
            if not self.receiver.options.show
            else f"{self.showing} (producers filter the rest; {state.filtered} left out here)"
        )
        self.labels["rate"].setText(
            f"{display.receive_rate:.1f} received, {display.display_rate:.1f} displayed"
        )
        self.labels["latency"].setText(
            f"p50 {display.latency_p50_ms:.1f} ms, p99 {display.latency_p99_ms:.1f} ms"
        )
        self.labels["queue"].setText(
            f"{state.queue_depth} batches, {state.queue_bytes / 2**20:.1f} MiB"
        )
        self.labels["layers"].setText(str(display.layers))
        self.labels["store"].setText(store_text(display))
        unstored = sum(display.unstored.values())
        self.labels["unstored"].setText(
            ", ".join(f"{n} {why}" for why, n in sorted(display.unstored.items()))
            if unstored
            else "0"
        )
        budget = display.memory_budget_bytes
        self.labels["memory"].setText(
            f"{display.cache_bytes / 2**20:.0f} of {budget / 2**20:.0f} MiB, "
            f"{display.store_queued_bytes / 2**20:.0f} MiB to write"
            if budget
            else "all planes in RAM (store = memory)"
        )


def store_text(display: Any) -> str:
    """The run store line: its folder and images written, or its first failure."""
    if display.store != "disk":
        return "none (store = memory)"
    if display.store_error:
        return f"{display.stored} written; {display.store_error}"
    return f"{display.stored} written to {display.store_path}"


CAPTION_FONT = 10.0  # points
CAPTION_MIN_FONT = 6.0
CAPTION_PX_PER_CHAR_POINT = 0.95  # a caption character is about this wide per point
CAPTION_MARGIN_PX = 24


class SliceCaption:
    """Keeps the caption in step with the sliders, the active layer and new data."""

    def __init__(self, viewer: Any, pump: Pump, panel: StatusDock) -> None:
        self.viewer = viewer
        self.pump = pump
        self.panel = panel
        self.overlay = viewer.canvas.overlays.text if hasattr(viewer, "canvas") else None
        if self.overlay is not None:
            self.overlay.visible = False  # shown once there is a caption
            self.overlay.position = "bottom_left"
            self.overlay.font_size = CAPTION_FONT
        viewer.dims.events.current_step.connect(self.update)
        viewer.layers.selection.events.active.connect(self.update)
        viewer.layers.events.inserted.connect(self.update)
        viewer.layers.events.removed.connect(self.update)

    def _layer(self) -> Any:
        streamed = self.pump.applier.layers
        active = self.viewer.layers.selection.active
        if active is not None and active.name in streamed:
            return active
        for layer in reversed(list(self.viewer.layers)):
            if layer.visible and layer.name in streamed:
                return layer
        return None

    def text(self) -> str:
        layer = self._layer()
        if layer is None:
            return ""
        stored = self.pump.plans.layer(layer.name)
        if stored is None:
            return ""
        step = tuple(self.viewer.dims.current_step)
        ndim = len(stored.axis_labels)
        index = step[len(step) - ndim :][: len(stored.axes)] if len(step) >= ndim else ()
        text = self.pump.plans.describe(layer.name, [int(i) for i in index])
        planes = stored.array
        if planes is not None and len(index) == len(planes.sizes):
            inside = all(0 <= i < n for i, n in zip(index, planes.sizes, strict=True))
            if inside and planes.entry(tuple(int(i) for i in index)) is None:
                text += " | not yet"  # shown as zeros until its plane arrives
        return text

    def _canvas_width(self) -> int:
        """The canvas's width in pixels (0 if unknown: napari keeps it in its Qt viewer)."""
        qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
        native = getattr(getattr(qt_viewer, "canvas", None), "native", None)
        return int(native.width()) if native is not None else 0

    def font_size(self, text: str) -> float:
        """The caption's font size: CAPTION_FONT, smaller when the text would not fit the
        canvas (a narrow window, a long caption), never below CAPTION_MIN_FONT."""
        width = self._canvas_width()
        if not width or not text:
            return CAPTION_FONT
        fits = (width - CAPTION_MARGIN_PX) / (len(text) * CAPTION_PX_PER_CHAR_POINT)
        return max(CAPTION_MIN_FONT, min(CAPTION_FONT, float(int(fits * 2) / 2)))

    @never_raises
    def update(self, *_: Any) -> None:
        text = self.text()
        if self.overlay is not None:
            # Hidden rather than empty: vispy's text visual with no glyphs crashes llvmpipe.
            if text and self.overlay.text != text:
                self.overlay.text = text
            size = self.font_size(text)
            if text and self.overlay.font_size != size:
                self.overlay.font_size = size
            if self.overlay.visible != bool(text):
                self.overlay.visible = bool(text)
        self.panel.labels["slice"].setText(text or "-")
