"""The plate overview in napari: per step, the plate's wells as tiles, one layer per channel.

Each step's overview (``layer_model.PlateOverview``) is shown left of the detailed layers,
as tall as one of their planes: a ``wells`` layer (each well's slot: dark grey until it
arrives, dark red if it failed), one image layer per channel composed additively in that
channel's colormap, and the row letters and column numbers as text. The overview is made
once the step has more than one well.

Clicking a well (or a site in it) moves the detailed layers' sliders there and the camera
to them; ``O`` (or the dock's button) goes back to the overview. Hovering shows the well
and site in napari's status bar. Redrawing is at most ``REDRAW_S`` apart while a plate
streams in (a canvas is one texture: redrawing it per image would cost more than the
image).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.utils.colormaps import Colormap
from qtpy.QtCore import QTimer

from ..layer_model import Overviews, Plans, PlateOverview
from ._slots import never_raises

log = logging.getLogger(__name__)

REDRAW_S = 0.4
MARGIN = 0.12  # between the overview and the detailed layers, in plane widths
# The wells layer's values: gap, not yet, arrived, failed (PlateOverview's frame values).
FRAME_COLORMAP = Colormap(
    colors=[
        [0.0, 0.0, 0.0, 0.0],
        [0.20, 0.20, 0.22, 1.0],
        [0.03, 0.03, 0.03, 1.0],
        [0.55, 0.06, 0.06, 1.0],
    ],
    controls=[0.0, 0.25, 0.5, 0.75, 1.0],
    interpolation="zero",
    name="platestream wells",
)
FRAME_LIMITS = (0.0, 4.0)
OVERVIEW = "overview"  # layer.metadata key: the layer belongs to a plate overview


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


@dataclass
class _Shown:
    """The napari layers of one step's overview."""

    frame: Any
    channels: dict[Hashable, Any] = field(default_factory=dict)
    text: Any = None
    scale: float = 1.0
    translate: tuple[float, float] = (0.0, 0.0)
    contrast: dict[Hashable, tuple[float, ...]] = field(default_factory=dict)  # as we set it

    def all(self) -> list[Any]:
        return [self.frame, *self.channels.values(), *([self.text] if self.text else [])]


class OverviewLayers:
    """Keeps napari's overview layers in step with ``overviews``; navigates on clicks."""

    def __init__(self, viewer: Any, plans: Plans, overviews: Overviews) -> None:
        self.viewer = viewer
        self.plans = plans
        self.overviews = overviews
        self.shown: dict[tuple[int, str], _Shown] = {}
        self.redraws = 0  # canvases handed to napari again (for the benchmark)
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self.update())  # (self.update may be wrapped)
        viewer.mouse_drag_callbacks.append(self._on_press)
        viewer.mouse_move_callbacks.append(self._on_move)
        viewer.bind_key("o", self._key_overview, overwrite=True)

    # ------------------------------------------------------------------ drawing

    @never_raises
    def update(self, force: bool = False) -> None:
        """Draw what changed (at most every ``REDRAW_S``; the rest at the next chance)."""
        wait = self._last + REDRAW_S - time.monotonic()
        if wait > 0 and not force:
            if not self._timer.isActive():
                self._timer.start(int(wait * 1000) + 1)
            return
        self._last = time.monotonic()
        first = not self.shown
        for number, (key, plate) in enumerate(sorted(self.overviews.plates.items())):
            if plate.well_count < 2 or plate.geometry is None:
                continue  # one well: the detailed layers show it all
            shown = self.shown.get(key)
            if shown is None:
                shown = self._create(key, plate, number)
                continue
            channels, frame, reshaped = plate.take_changes()
            if reshaped:
                self._reshape(key, plate, shown)
                continue
            for channel in channels:
                layer = shown.channels.get(channel)
                if layer is None:
                    self._add_channel(key, plate, shown, channel)
                else:
                    layer.refresh()
                    self.redraws += 1
            if frame:
                shown.frame.refresh()
            self._follow_contrast(plate, shown)
        if first and self.shown:  # the overview is the home view; after napari's own fit
            self.show_overview()
            QTimer.singleShot(0, self.show_overview)

    def _follow_contrast(self, plate: PlateOverview, shown: _Shown) -> None:
        """Contrast from the first wells, unless the user has set it meanwhile."""
        for channel in list(plate.contrast_changed):
            layer = shown.channels.get(channel)
            if layer is None:
                continue
            plate.contrast_changed.discard(channel)
            if tuple(layer.contrast_limits) == shown.contrast.get(channel):
                layer.contrast_limits = plate.contrast[channel]
                shown.contrast[channel] = tuple(layer.contrast_limits)

    def clear(self) -> None:
        for shown in self.shown.values():
            for layer in shown.all():
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        self.shown.clear()

    def _placement(self, key: tuple[int, str], plate: PlateOverview, number: int) -> Any:
        height, width = plate.frame.shape
        plane = self.overviews.plane_shapes.get(key, (height, width))
        scale = plane[0] / height
        top = number * plane[0] * (1 + MARGIN)
        left = -width * scale - plane[-1] * MARGIN
        return scale, (top, left)

    def _create(self, key: tuple[int, str], plate: PlateOverview, number: int) -> _Shown:
        scale, translate = self._placement(key, plate, number)
        plate.take_changes()  # everything is drawn now
        frame = self.viewer.add_image(
            plate.frame,
            name=f"{OVERVIEW} {plate.title} wells",
            colormap=FRAME_COLORMAP,
            contrast_limits=FRAME_LIMITS,
            scale=(scale, scale),
            translate=translate,
            metadata={OVERVIEW: plate.title},
        )
        shown = _Shown(frame, scale=scale, translate=translate)
        self.shown[key] = shown
        for channel in plate.channels:
            self._add_channel(key, plate, shown, channel)
        self._add_text(plate, shown)
        self._status_of(frame, plate, None)
        return shown

    def _add_channel(
        self, key: tuple[int, str], plate: PlateOverview, shown: _Shown, channel: Hashable
    ) -> None:
        name = f"{OVERVIEW} {plate.title}" + (f" {channel}" if channel is not None else "")
        layer = self.viewer.add_image(
            plate.channels[channel],
            name=name,
            colormap=self.overviews.colormaps.get((key, channel)) or "gray",
            blending="additive",
            contrast_limits=plate.contrast.get(channel, (0.0, 1.0)),
            scale=(shown.scale, shown.scale),
            translate=shown.translate,
            metadata={OVERVIEW: plate.title},
        )
        shown.channels[channel] = layer
        shown.contrast[channel] = tuple(layer.contrast_limits)
        plate.contrast_changed.discard(channel)
        self._status_of(layer, plate, channel)

    def _add_text(self, plate: PlateOverview, shown: _Shown) -> None:
        rows, columns = plate.labels()
        marks = rows + columns
        if shown.text is not None:
            self.viewer.layers.remove(shown.text)
        shown.text = self.viewer.add_points(
            np.array([(y, x) for y, x, _ in marks], float).reshape(-1, 2),
            name=f"{OVERVIEW} {plate.title} rows and columns",
            features={"mark": [text for _, _, text in marks]},
            text={"string": "{mark}", "color": "white", "size": 9, "anchor": "center"},
            size=1,
            face_color="transparent",
            border_width=0,
            scale=(shown.scale, shown.scale),
            translate=shown.translate,
            metadata={OVERVIEW: plate.title},
        )

    def _reshape(self, key: tuple[int, str], plate: PlateOverview, shown: _Shown) -> None:
        """The plate or its site grid grew: new canvases, placed again."""
        number = sorted(self.overviews.plates).index(key)
        scale, translate = self._placement(key, plate, number)
        shown.scale, shown.translate = scale, translate
        shown.frame.data = plate.frame
        for channel, layer in shown.channels.items():
            layer.data = plate.channels[channel]
        for channel in plate.channels:
            if channel not in shown.channels:
                self._add_channel(key, plate, shown, channel)
        for layer in [shown.frame, *shown.channels.values()]:
            layer.scale, layer.translate = (scale, scale), translate
        self._add_text(plate, shown)

    # -------------------------------------------------------------- the cursor

    def hit(self, position: Any) -> tuple[tuple[int, str], str, Any] | None:
        """(step, well, site) under a world position, if it is on an overview."""
        world_y, world_x = float(position[-2]), float(position[-1])
        for key, shown in self.shown.items():
            y = (world_y - shown.translate[0]) / shown.scale
            x = (world_x - shown.translate[1]) / shown.scale
            found = self.overviews.plates[key].locate(y, x)
            if found is not None:
                return (key, *found)
        return None

    def _status_of(self, layer: Any, plate: PlateOverview, channel: Hashable) -> None:
        """napari's status for this layer starts with the well and site under the cursor."""
        own = layer.get_status

        def status(position: Any = None, **kwargs: Any) -> Any:
            result = own(position, **kwargs)
            if position is not None and isinstance(result, dict):
                found = self.hit(position)
                if found is not None:
                    _, well, site = found
                    where = well if site is None else f"{well} site {site}"
                    result["coordinates"] = f"{where}: {result.get('coordinates', '')}"
            return result

        layer.get_status = status

    def _on_move(self, viewer: Any, event: Any) -> None:
        found = self.hit(event.position)
        if found is not None:
            _, well, site = found
            viewer.help = (
                f"{well}" + (f" site {site}" if site is not None else "") + (": click to show it")
            )

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
        dims.current_step = tuple(step)
        for layer in self.viewer.layers:  # what the user may have hidden
            if layer is target:
                layer.visible = True
        extent = np.asarray(target.extent.world)[:, -2:]  # (min, max) of y and x
        self._fit(*extent[0], *(extent[1] - extent[0]))
        self.viewer.layers.selection.active = target
        return True

    def _fit(self, top: float, left: float, height: float, width: float) -> None:
        """The camera on a world rectangle (napari's ``fit_to_view`` cannot take a 2D
        layer in a viewer with sliders)."""
        canvas_height, canvas_width = self.viewer.canvas.size
        camera = camera_of(self.viewer)
        camera.center = (top + height / 2, left + width / 2)
        camera.zoom = 0.95 * min(canvas_height / max(height, 1e-9), canvas_width / max(width, 1e-9))

    def _same_step(self, stored: Any, key: tuple[int, str]) -> bool:
        step = stored.components.get("step")
        return step is not None and key[1] in str(step)

    def _napari_layer(self, name: str) -> Any:
        try:
            return self.viewer.layers[name]
        except KeyError:
            return None

    def show_overview(self) -> bool:
        """The camera back on the plate overviews; False if there are none yet."""
        if not self.shown:
            return False
        tops, lefts, bottoms, rights = [], [], [], []
        for shown in self.shown.values():
            height, width = np.asarray(shown.frame.data.shape[-2:]) * shown.scale
            label = (self.overviews.tile + 4) * shown.scale  # the row and column labels
            tops.append(shown.translate[0] - label)
            lefts.append(shown.translate[1] - label)
            bottoms.append(shown.translate[0] + height)
            rights.append(shown.translate[1] + width)
        top, left = min(tops), min(lefts)
        self._fit(top, left, max(bottoms) - top, max(rights) - left)
        self.viewer.layers.selection.active = next(iter(self.shown.values())).frame
        return True

    def _key_overview(self, viewer: Any) -> None:
        self.show_overview()
