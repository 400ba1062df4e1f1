"""The plate overview in a real napari under Xvfb: tiles at their plate positions with
their images' intensity (pixels of a screenshot), a real mouse click that moves the
sliders and the camera to a well, the status under the cursor, and the way back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.backend import NapariStreamingBackend, Receiver, ReceiverOptions
from platestream.config import resolve_current
from platestream.layering import ImageItem
from platestream.store import well_position
from platestream.viewer.layer_model import Overviews
from platestream.viewer.process import _app as app
from platestream.viewer.process._overview import camera_of

from .conftest import GUI
from .streaming import config

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(120)]

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]
TOP = 6000  # the brightest well's value: the overview's contrast spans 0..TOP


def well_plane(number: int) -> np.ndarray:
    """Left half 0, right half ``1000 * (number + 1)``: the tile's mean is half of that."""
    plane = np.zeros((64, 64), np.uint16)
    plane[:, 32:] = 1000 * (number + 1)
    return plane


def stream_plate(backend: NapariStreamingBackend, sites: list[int]) -> int:
    arrays, items = [], []
    for number, well in enumerate(WELLS):
        for site in sites:
            arrays.append(well_plane(number))
            components = {"well": well, "site": site, "channel": "DAPI"}
            items.append(ImageItem(components, 1, "blur", (64, 64), "uint16"))
    backend.save_batch(arrays, items)
    return len(items)


@pytest.fixture
def wired(make_napari_viewer: Callable[..., Any]) -> Any:
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1000, 700)
    receiver = Receiver(ReceiverOptions(port=0)).start()
    overviews = Overviews(tile=64)
    pump, _caption = app.assemble(viewer, receiver, "overview", None, overviews)
    settings = config(receiver.data_port, overview=True)
    backend = NapariStreamingBackend(resolve_current(settings).value)
    yield viewer, pump, backend
    backend.close()
    pump.close()
    receiver.close()


def to_screen(viewer: Any, shape: tuple[int, ...], world_y: float, world_x: float) -> Any:
    """Canvas pixel (row, column) of a world position, from napari's 2D camera."""
    center_y, center_x = camera_of(viewer).center[-2:]
    zoom = camera_of(viewer).zoom
    return (
        (world_y - center_y) * zoom + shape[0] / 2,
        (world_x - center_x) * zoom + shape[1] / 2,
    )


def test_a_streamed_plate_shows_each_well_at_its_place_and_a_click_goes_there(
    wired: Any, qtbot: Any, tmp_path: Path
) -> None:
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    viewer, pump, backend = wired
    total = stream_plate(backend, [1])
    qtbot.waitUntil(lambda: pump.stats.displayed == total, timeout=20000)
    overview = pump.overview
    qtbot.waitUntil(lambda: bool(overview.shown), timeout=20000)
    overview.update(force=True)  # whatever arrived since the last redraw
    plate = pump.plans.store.overviews.plates[(1, "blur")]
    shown = overview.shown[(1, "blur")]
    layer = shown.layer
    assert plate.contrast["DAPI"] == (0.0, TOP)  # from the first wells
    assert layer.rgb and layer.name == "overview 01_blur"
    assert overview.show_overview()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    np.save(tmp_path / "overview.npy", shot)
    gray = shot[..., :3].astype(float).mean(axis=2)
    layout = plate.geometry
    assert layout is not None and (layout.rows, layout.columns) == (2, 3)
    scale, (top, left), margin = shown.scale, shown.translate, shown.margin

    def world(y: float, x: float) -> tuple[float, float]:
        """A plate canvas pixel's world position."""
        return (top + (margin + y) * scale, left + (margin + x) * scale)

    def screen(y: float, x: float) -> tuple[float, float]:
        return to_screen(viewer, shot.shape, *world(y, x))

    def patch(y: float, x: float) -> float:
        row, column = (int(v) for v in screen(y, x))
        return float(gray[row - 2 : row + 3, column - 2 : column + 3].mean())

    for number, well in enumerate(WELLS):
        position = well_position(well)
        assert position is not None
        y, x = layout.cell_origin(position, 0)
        half = layout.cell / 2
        bright = patch(y + half, x + layout.cell * 3 / 4)  # the bright half of its plane
        dark = patch(y + half, x + layout.cell / 4)
        expected = 255 * 1000 * (number + 1) / TOP
        assert abs(bright - dark - expected) < 12, (well, bright, dark, expected)
        assert dark < 20, (well, dark)  # the dark half over the arrived well's slot

    # hovering: napari's status for the overview names the well and the channels' values
    position = well_position("A03")
    assert position is not None
    y, x = layout.cell_origin(position, 0)
    sliders = tuple(viewer.dims.point[:-2])
    status = layer.get_status(np.array((*sliders, *world(y + 2, x + 40))), world=True)
    assert status["coordinates"] == "A03 site 1: DAPI: 3000", status

    # the dock's slider: the user's contrast for DAPI, every tile drawn again with it
    slider = overview.contrast.sliders[((1, "blur"), "DAPI")]
    assert tuple(slider.value()) == (0.0, TOP)
    b01 = well_position("B01")
    assert b01 is not None
    y, x = layout.cell_origin(b01, 0)
    pixel = (margin + y + layout.cell // 2, margin + x + layout.cell * 3 // 4)
    assert int(shown.rgb[pixel][0]) == 8 + round(255 * 4000 / TOP)  # B01's 4000 of 6000
    slider.setValue((0.0, TOP / 2))
    assert plate.contrast["DAPI"] == (0.0, TOP / 2) and "DAPI" in plate.user_contrast
    assert int(shown.rgb[pixel][0]) == 255  # 4000 over a window up to 3000: saturated

    # the pipeline reports B03 failed: its slot turns red under its images
    from platestream.backend import request_once
    from platestream.schemas import WellsFailed

    replies: list[Any] = []
    failed = WellsFailed(step_name="blur", wells=("B03",), reason="ValueError: empty")
    port = pump.receiver.data_port
    asking = threading.Thread(
        target=lambda: replies.append(request_once("127.0.0.1", port, failed, timeout_s=10))
    )
    asking.start()
    qtbot.waitUntil(lambda: bool(replies), timeout=10000)
    asking.join(10)
    assert replies[0].message.TYPE == "ok"
    b03 = well_position("B03")
    assert b03 is not None
    y, x = layout.cell_origin(b03, 0)
    red, green, _ = (int(v) for v in shown.rgb[margin + y + 2, margin + x + 2])  # dark half
    assert red > 100 and green < 40, (red, green)

    # a real click on B02 (press and release on the canvas) moves the sliders there, and
    # shows the step of that overview (hidden here, as when a newer step came)
    next(iter(pump.applier.layers.values())).visible = False
    canvas = viewer.window._qt_viewer.canvas.native
    ratio = canvas.devicePixelRatioF()
    b02 = well_position("B02")
    assert b02 is not None
    y, x = layout.cell_origin(b02, 0)
    row, column = screen(y + layout.cell / 2, x + layout.cell / 2)
    QTest.mouseClick(
        canvas,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        QPoint(int(column / ratio), int(row / ratio)),
    )
    labels = list(viewer.dims.axis_labels)
    well_axis = labels.index("Well")
    (detail,) = pump.applier.layers.values()  # the one detailed layer of the plate
    stored = pump.plans.store.layers[detail.name]
    wells = next(axis for axis in stored.axes if axis.component == "well").values
    qtbot.waitUntil(lambda: viewer.dims.current_step[well_axis] == wells.index("B02"), timeout=5000)
    # and the camera to the detailed layer (right of the overview, at x >= 0)
    assert camera_of(viewer).center[-1] > 0
    assert viewer.layers.selection.active is detail and detail.visible
    # O: back to the overview
    assert overview.show_overview()
    assert camera_of(viewer).center[-1] < 0


def test_a_viewer_process_shows_the_plate_overview_of_a_streamed_plate(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    """A real viewer process: the overview is its home view once a second well arrives;
    its snapshot shows the 2 x 3 wells in plate order, each as bright as its image."""
    from platestream.viewer.manager import NapariStreamVisualizer

    from .streaming import png_of, wait_received

    port = ports(1)
    settings = config(port, overview=True)
    with NapariStreamVisualizer(settings, title="overview", persistent=False) as visualizer:
        assert visualizer.start_viewer(async_mode=False) is not None or visualizer.pong
        arrays = [well_plane(number) for number in range(len(WELLS))]
        items = [
            ImageItem({"well": well, "site": 1, "channel": "DAPI"}, 1, "blur", (64, 64), "uint16")
            for well in WELLS
        ]
        visualizer.save_batch(arrays, items)
        wait_received(visualizer, len(WELLS))
        picture = png_of(visualizer.snapshot(tmp_path / "overview.png"))
    gray = picture[..., :3].astype(int)
    slot = (np.abs(gray - 8) <= 2).all(axis=-1)  # an arrived well's slot (dark half)
    rows = _widest_run(np.nonzero(slot.sum(axis=1) > 10)[0])  # not the caption's box
    assert rows.size, "no well slots in the snapshot"
    top, bottom = rows.min(), rows.max() + 1
    height = (bottom - top) / 2
    # the slots' dark halves, with the bright halves between them
    columns = _widest_run(np.nonzero(slot[top:bottom].sum(axis=0) > 10)[0], gap=int(height))
    left, right = columns.min(), columns.max() + 1
    right += (right - left) / 5  # the last tile's bright half: 1/2 tile of 2.5
    width = (right - left) / 3
    assert abs(width - height) < 0.1 * height, (width, height)  # square tiles
    levels = []
    for number, _well in enumerate(WELLS):
        row, column = divmod(number, 3)
        y0, x0 = int(top + row * height), int(left + column * width)
        tile = gray[y0 + 2 : int(y0 + height) - 2, x0 + 2 : int(x0 + width) - 2].mean(axis=-1)
        levels.append(float(np.percentile(tile, 90)))  # the bright half of the tile
    expected = [8 + 255 * 1000 * (n + 1) / TOP for n in range(len(WELLS))]
    assert np.allclose(levels, expected, atol=12), (levels, expected)


def _widest_run(indices: np.ndarray, gap: int = 20) -> np.ndarray:
    """The widest group of ``indices`` without a gap of more than ``gap`` inside."""
    if indices.size == 0:
        return indices
    groups = np.split(indices, np.nonzero(np.diff(indices) > gap)[0] + 1)
    return max(groups, key=lambda group: int(group[-1] - group[0]))
