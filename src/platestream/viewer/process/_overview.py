"""The plate overview in napari: per step, one RGB layer with the plate's wells as tiles.

Each step's overview (``layer_model.PlateOverview``) is shown left of the detailed layers,
as tall as one of their planes, as a single RGB image layer (``overview 01_blur``): the
channels composed additively through their colormaps (``layer_model.compose``), each
well's slot dark grey until it arrives (dark red if it failed), and the row letters and
column numbers drawn around the plate. One layer, not one per channel: napari spends
~130 ms making a layer and ~45 ms redrawing one under software GL, which would cost a
short plate more than its images. Contrast is per channel, from the first wells, then
the user's (the dock's "overview contrast" sliders). The overview is made once the step
has more than one well.

Clicking a well (or a site in it) moves the detailed layers' sliders there and the camera
to them; ``O`` (or the dock's button) goes back to the overview. Hovering shows the well,
site and each channel's value in napari's status bar. The overview is drawn when the
display has been quiet for ``QUIET_S`` - the detailed layers go first - and at least every
``REDRAW_S`` while a plate streams in; a redraw draws only the wells that changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from ..layer_model import Overviews, Plans, PlateOverview, compose
from ._slots import never_raises

log = logging.getLogger(__name__)

REDRAW_S = 2.0  # the longest an overview waits for a quiet display
QUIET_S = 0.25  # a display without new images this long draws the overview
MARGIN = 0.12  # between the overview and the detailed layers, in plane widths
OVERVIEW = "overview"  # layer.metadata key: the layer is a plate overview


def camera_of(viewer: Any) -> Any:
    """napari's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def max_texture_side() -> int:
    """The GPU's largest 2D texture (napari's own query; 2048 if it cannot tell)."""
    try:
        from napari._vispy.utils.gl import get_max_texture_sizes

        return int(get_max_texture_sizes()[0] or 2048)
    except Exception:  # no GL context yet, or napari moved it
        return 2048


def lookup_table(colormap: str | None) -> np.ndarray:
    """256 RGB values (uint8) of a napari colormap, from black to its brightest."""
    from napari.utils.colormaps import ensure_colormap

    rgba = ensure_colormap(colormap or "gray").map(np.linspace(0.0, 1.0, 256))
    table: np.ndarray = np.clip(np.asarray(rgba)[:, :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return table


def draw_labels(rgb: np.ndarray, plate: PlateOverview, margin: int) -> None:
    """Row letters left of the plate and column numbers above it, into ``rgb``'s margin."""
    from qtpy.QtCore import QRectF, Qt
    from qtpy.QtGui import QColor, QFont, QImage, QPainter

    height, width = rgb.shape[:2]
    image = QImage(width, height, QImage.Format.Format_RGBA8888)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    try:
        font = QFont()
        font.setPixelSize(max(8, int(margin * 0.6)))
        painter.setFont(font)
        painter.setPen(QColor(230, 230, 230))
        rows, columns = plate.labels()
        align = Qt.AlignmentFlag.AlignCenter
        for y, _, text in rows:
            painter.drawText(QRectF(0, margin + y - margin / 2, margin, margin), align, text)
        for _, x, text in columns:
            painter.drawText(QRectF(margin + x - margin, 0, 2 * margin, margin), align, text)
    finally:
        painter.end()
    bits = image.constBits()
    bits.setsize(height * image.bytesPerLine())
    flat = np.frombuffer(bits, np.uint8)  # type: ignore[call-overload]
    lines = flat.reshape(height, image.bytesPerLine())
    rgba = lines[:, : 4 * width].reshape(height, width, 4)
    ink = rgba[..., 3:4].astype(np.uint16)
    rgb[:] = (rgb * (255 - ink) + rgba[..., :3] * ink) // 255


@dataclass
class _Shown:
    """The napari layer of one step's overview and what it shows."""

    layer: Any
    rgb: np.ndarray
    margin: int
    scale: float = 1.0
    translate: tuple[float, float] = (0.0, 0.0)
    luts: dict[Hashable, np.ndarray] = field(default_factory=dict)


class OverviewLayers:
    """Keeps napari's overview layers in step with ``overviews``; navigates on clicks."""

    def __init__(self, viewer: Any, plans: Plans, overviews: Overviews) -> None:
        self.viewer = viewer
        self.plans = plans
        self.overviews = overviews
        self.shown: dict[tuple[int, str], _Shown] = {}
        self.closed = False
        self._waiting_since: float | None = None  # changes not drawn since then
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        # quiet for QUIET_S: draw (a lambda: self.update may be wrapped, by the benchmark)
        self._timer.timeout.connect(lambda: self.update(force=True))
        viewer.mouse_drag_callbacks.append(self._on_press)
        viewer.bind_key("o", self._key_overview, overwrite=True)
        self.contrast = OverviewContrast(viewer, self)

    # ------------------------------------------------------------------ drawing

    @never_raises
    def update(self, force: bool = False) -> None:
        """Draw what changed once the display has been quiet for ``QUIET_S`` (images keep
        coming: the detailed layers go first), and at least every ``REDRAW_S`` while a
        plate streams in; ``force``: now."""
        if self.closed:
            return
        now = time.monotonic()
        if not force:
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < REDRAW_S:
                self._timer.start(int(QUIET_S * 1000))  # (re)started by every new frame
                return
        self._timer.stop()
        self._waiting_since = None
        first = not self.shown
        for number, (key, plate) in enumerate(sorted(self.overviews.plates.items())):
            if plate.well_count < 2 or plate.geometry is None:
                continue  # one well: the detailed layers show it all
            shown = self.shown.get(key)
            dirty, reshaped = plate.take_changes()
            if shown is None or reshaped:
                self._draw_all(key, plate, number)
                continue
            self._tables(key, plate, shown)
            if dirty:
                compose(plate, shown.luts, self._plate_part(shown), dirty)
                shown.layer.refresh()
        if self.shown:
            self.contrast.sync()
            self.contrast.follow()
        if first and self.shown:  # the overview is the home view; after napari's own fit
            self.show_overview()
            QTimer.singleShot(0, self._home)

    def _plate_part(self, shown: _Shown) -> np.ndarray:
        return shown.rgb[shown.margin :, shown.margin :]

    def _tables(self, key: tuple[int, str], plate: PlateOverview, shown: _Shown) -> None:
        for channel in plate.channels:
            if channel not in shown.luts:
                shown.luts[channel] = lookup_table(self.overviews.colormaps.get((key, channel)))

    def _draw_all(self, key: tuple[int, str], plate: PlateOverview, number: int) -> None:
        """Make (or remake, the plate having grown) a step's overview layer."""
        layout = plate.geometry
        assert layout is not None
        margin = max(12, layout.pitch // 2)
        height, width = layout.shape
        rgb = np.zeros((height + margin, width + margin, 3), np.uint8)
        plane = self.overviews.plane_shapes.get(key, (height, width))
        scale = plane[0] / (height + margin)
        top = number * plane[0] * (1 + MARGIN)
        left = -(width + margin) * scale - plane[-1] * MARGIN
        old = self.shown.get(key)
        shown = _Shown(None, rgb, margin, scale, (top, left), old.luts if old else {})
        self._tables(key, plate, shown)
        draw_labels(rgb, plate, margin)
        compose(plate, shown.luts, self._plate_part(shown), plate.all_positions(layout))
        if old is None:
            shown.layer = self.viewer.add_image(
                rgb,
                name=f"{OVERVIEW} {plate.title}",
                rgb=True,
                scale=(scale, scale),
                translate=(top, left),
                metadata={OVERVIEW: plate.title},
            )
            self._status_of(shown.layer, key)
            self.shown[key] = shown
        else:
            shown.layer = old.layer
            self.shown[key] = shown
            shown.layer.data = rgb
            shown.layer.scale, shown.layer.translate = (scale, scale), (top, left)

    def set_contrast(self, key: tuple[int, str], channel: Hashable, limits: Any) -> None:
        """The user's contrast for one channel of a step's overview (the dock's sliders)."""
        plate = self.overviews.plates.get(key)
        if plate is not None:
            plate.set_contrast(channel, (float(limits[0]), float(limits[1])))
            self.update(force=True)

    def clear(self) -> None:
        for shown in self.shown.values():
            if shown.layer in self.viewer.layers:
                self.viewer.layers.remove(shown.layer)
        self.shown.clear()

    # -------------------------------------------------------------- the cursor

    def hit(self, position: Any) -> tuple[tuple[int, str], str, Any] | None:
        """(step, well, site) under a world position, if it is on an overview."""
        found = self._canvas_point(position)
        if found is None:
            return None
        key, y, x = found
        where = self.overviews.plates[key].locate(y, x)
        return None if where is None else (key, *where)

    def _canvas_point(self, position: Any) -> tuple[tuple[int, str], float, float] | None:
        world_y, world_x = float(position[-2]), float(position[-1])
        for key, shown in self.shown.items():
            y = (world_y - shown.translate[0]) / shown.scale - shown.margin
            x = (world_x - shown.translate[1]) / shown.scale - shown.margin
            if self.overviews.plates[key].locate(y, x) is not None:
                return (key, y, x)
        return None

    def _status_of(self, layer: Any, key: tuple[int, str]) -> None:
        """napari's status for this layer: the well, site and each channel's value."""
        own = layer.get_status

        def status(position: Any = None, **kwargs: Any) -> Any:
            result = own(position, **kwargs)
            if position is None or not isinstance(result, dict) or not kwargs.get("world"):
                return result
            found = self._canvas_point(position)
            if found is None or found[0] != key:
                return result
            _, y, x = found
            plate = self.overviews.plates[key]
            where = plate.locate(y, x)
            if where is None:
                return result
            well, site = where
            text = well if site is None else f"{well} site {site}"
            values = ", ".join(
                f"{channel}: {value:g}" if channel is not None else f"{value:g}"
                for channel, value in plate.values_at(y, x).items()
            )
            result["coordinates"] = f"{text}: {values}" if values else text
            result["coords"], result["value"] = text, values
            return result

        layer.get_status = status

    def _on_press(self, viewer: Any, event: Any) -> Any:
        """A click (press and release without dragging) on a well goes to it."""
        start = tuple(event.position)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged and event.button == 1:
            found = self.hit(start)
            if found is not None:
                self.go_to(*found)

    # -------------------------------------------------------------- navigation

    def go_to(self, key: tuple[int, str], well: str, site: Any) -> bool:
        """Move the detailed layers' sliders to ``well`` (and ``site``) and the camera to
        them; False if no detailed layer has that well."""
        dims = self.viewer.dims
        step = list(dims.current_step)
        target = None
        for name, stored in self.plans.store.layers.items():
            layer = self._napari_layer(name)
            if layer is None or not stored.axes:
                continue
            first = len(step) - layer.ndim
            moved = False
            for offset, axis in enumerate(stored.axes):
                value = {"well": well, "site": site}.get(axis.component)
                if value is not None and value in axis.values and first + offset >= 0:
                    step[first + offset] = axis.values.index(value)
                    moved = moved or axis.component == "well"
            if moved and (target is None or self._same_step(stored, key)):
                target = layer
        if target is None:
            return False
        self._show_step(key)
        dims.current_step = tuple(step)
        extent = np.asarray(target.extent.world)[:, -2:]  # (min, max) of y and x
        self._fit(*extent[0], *(extent[1] - extent[0]))
        self.viewer.layers.selection.active = target
        return True

    def _show_step(self, key: tuple[int, str]) -> None:
        """A click on a step's overview shows that step's images (one image step at a
        time, as the first view has it); labels and other steps' layers are left as they
        are, the other image steps hidden."""
        for name, stored in self.plans.store.layers.items():
            layer = self._napari_layer(name)
            step = stored.components.get("step")
            if layer is None or stored.kind.value != "image" or not isinstance(step, tuple):
                continue
            layer.visible = self._same_step(stored, key)

    def _fit(self, top: float, left: float, height: float, width: float) -> None:
        """The camera on a world rectangle (napari's ``fit_to_view`` cannot take a 2D
        layer in a viewer with sliders)."""
        canvas_height, canvas_width = self.viewer.canvas.size
        camera = camera_of(self.viewer)
        camera.center = (top + height / 2, left + width / 2)
        camera.zoom = 0.95 * min(canvas_height / max(height, 1e-9), canvas_width / max(width, 1e-9))

    def _same_step(self, stored: Any, key: tuple[int, str]) -> bool:
        step = stored.components.get("step")
        if isinstance(step, tuple) and len(step) == 2:
            return (int(step[0]), str(step[1])) == (int(key[0]), str(key[1]))
        return step is not None and key[1] in str(step)

    def _napari_layer(self, name: str) -> Any:
        try:
            return self.viewer.layers[name]
        except KeyError:
            return None

    def close(self) -> None:
        """No more drawing (the viewer is closing): timers stop, later calls do nothing."""
        self.closed = True
        self._timer.stop()

    def show_overview(self) -> bool:
        """The camera back on the plate overviews; False if there are none (or the viewer
        is closing)."""
        if self.closed or not self.shown:
            return False
        if any(shown.layer not in self.viewer.layers for shown in self.shown.values()):
            return False  # the user removed one: the camera stays
        tops, lefts, bottoms, rights = [], [], [], []
        for shown in self.shown.values():
            height, width = np.asarray(shown.rgb.shape[:2]) * shown.scale
            tops.append(shown.translate[0])
            lefts.append(shown.translate[1])
            bottoms.append(shown.translate[0] + height)
            rights.append(shown.translate[1] + width)
        top, left = min(tops), min(lefts)
        self._fit(top, left, max(bottoms) - top, max(rights) - left)
        self.viewer.layers.selection.active = next(iter(self.shown.values())).layer
        return True

    def _key_overview(self, viewer: Any) -> None:
        self.show_overview()

    @never_raises
    def _home(self) -> None:
        self.show_overview()


class OverviewContrast:
    """A dock of range sliders, one per step and channel of the overviews: the contrast
    starts from the first wells, then it is the user's to set here."""

    def __init__(self, viewer: Any, layers: OverviewLayers) -> None:
        from qtpy.QtWidgets import QFormLayout, QWidget

        self.layers = layers
        self.widget = QWidget()
        self.widget.setObjectName("platestream overview contrast")
        self.form = QFormLayout(self.widget)
        self.sliders: dict[tuple[tuple[int, str], Hashable], Any] = {}
        self._dock: Any = None
        self._viewer = viewer

    def sync(self) -> None:
        """A slider for every overview channel there is (made once, on first sight)."""
        from qtpy.QtCore import Qt
        from superqt import QLabeledDoubleRangeSlider

        for key, plate in sorted(self.layers.overviews.plates.items()):
            if key not in self.layers.shown:
                continue
            for channel, canvas in plate.channels.items():
                if (key, channel) in self.sliders:
                    continue
                low, high = plate.contrast.get(channel, (0.0, 1.0))
                top = float(np.iinfo(canvas.dtype).max) if canvas.dtype.kind in "ui" else high * 4
                slider = QLabeledDoubleRangeSlider(Qt.Orientation.Horizontal)
                slider.setRange(0.0, max(top, high))  # type: ignore[arg-type]
                slider.setValue((low, high))
                slider.valueChanged.connect(
                    lambda value, k=key, c=channel: self.layers.set_contrast(k, c, value)
                )
                name = plate.title + (f" {channel}" if channel is not None else "")
                self.form.addRow(name, slider)
                self.sliders[(key, channel)] = slider
        if self.sliders and self._dock is None:
            self._dock = self._viewer.window.add_dock_widget(
                self.widget, name="overview contrast", area="right"
            )

    def follow(self) -> None:
        """Sliders show the contrast the first wells set (until the user moves them)."""
        for (key, channel), slider in self.sliders.items():
            plate = self.layers.overviews.plates.get(key)
            if plate is None or channel in plate.user_contrast:
                continue
            limits = plate.contrast.get(channel)
            if limits is not None and tuple(slider.value()) != limits:
                slider.blockSignals(True)
                slider.setValue(limits)
                slider.blockSignals(False)
