"""The image browser with a real plate folder and real viewers under Xvfb: the plate as a
well grid and a filtered table, a thumbnail, a well selected in the grid streamed into a
viewer's layers (checked through its layers report and a snapshot), streaming to a viewer
that is still starting (its queue shown by the manager), unreadable files skipped with
their reason, and cancelling."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.config import NapariStreamingConfig
from platestream.pipeline import SyntheticPlate, read_plate, write_plate
from platestream.viewer.manager import NapariStreamVisualizer, open_viewer

from ..viewer.conftest import GUI
from ..viewer.streaming import png_of
from .test_manager_window import grab, has_colour

pytestmark = GUI

PLATE = SyntheticPlate(rows=2, columns=3, sites=2, size=96)  # 6 wells x 2 sites x 3 channels
SELECTED_OUTLINE = (0xFF, 0xD1, 0x66)


@pytest.fixture
def plate_folder(tmp_path: Path) -> Path:
    """The demo's plate, plus a file no TIFF reader can read and one whose pixels are cut
    short (its header reads, so it is listed, and it fails only when streamed)."""
    root = tmp_path / "plate"
    paths = write_plate(PLATE, root)
    (root / "TimePoint_1" / "demo_plate_A04_s1_w1.tif").write_bytes(b"not a tiff at all")
    cut = next(p for p in paths if p.name == "demo_plate_B01_s2_w3.tif")
    cut.write_bytes(cut.read_bytes()[:-4000])
    return root


def opened(qtbot: Any, browser: Any, root: Path) -> None:
    browser.open_plate(root)
    qtbot.waitUntil(lambda: browser.plate is not None, timeout=20000)


def test_the_browser_shows_a_plate_and_streams_a_well_into_a_viewer(
    qtbot: Any, ports: Callable[[int], int], plate_folder: Path, tmp_path: Path
) -> None:
    from platestream.gui import BrowserWindow, Instances

    port = ports(1)
    viewer = open_viewer(port=port, title="screen", config=NapariStreamingConfig(store="memory"))
    instances = Instances()
    browser = BrowserWindow(instances)
    qtbot.addWidget(browser)
    browser.show()
    opened(qtbot, browser, plate_folder)

    assert browser.grid.counts == {w: 6 for w in PLATE.wells}  # cut file: header still reads
    assert browser.grid.shape == (2, 3)
    assert browser.skipped.count() == 1 and "A04" in browser.skipped.item(0).text()
    assert "not a readable TIFF" in browser.skipped.item(0).text()
    assert browser.model.rowCount() == 36
    assert [browser.model.index(0, c).data() for c in range(4)] == ["A01", "1", "DAPI", ""]
    browser.filters["channel"].setCurrentText("GFP")
    assert browser.model.rowCount() == 12
    assert {browser.model.index(r, 2).data() for r in range(12)} == {"GFP"}
    browser.filters["channel"].setCurrentText("all")

    browser.grid.select({"A02"})  # as a click on the well does
    assert [image.name.components["well"] for image in browser.selected_images()] == ["A02"] * 6
    qtbot.waitUntil(
        lambda: browser.thumb.pixmap() is not None and not browser.thumb.pixmap().isNull(),
        timeout=10000,
    )

    qtbot.waitUntil(
        lambda: str(port) in [browser.target.itemText(i) for i in range(browser.target.count())],
        timeout=10000,
    )
    browser.target.setCurrentText(str(port))
    browser.stream_selected()
    qtbot.waitUntil(lambda: browser.result is not None, timeout=60000)
    assert browser.result.sent == 6 and not browser.result.skipped, browser.result.summary()
    assert browser.progress.value() == 6

    shown = viewer.wait_shown(6, timeout_s=60)
    assert shown is not None and shown.accounted >= 6
    report = viewer.layers()
    names = sorted(
        layer.name
        for layer in report.layers
        if layer.streamed and "overview" not in layer.name.lower()
    )
    assert names == [f"Step_00_input_Channel_{c}" for c in ("DAPI", "GFP", "RFP")]
    layer = next(layer for layer in report.layers if layer.name == names[0])
    assert layer.shape[-2:] == (96, 96) and "Site" in layer.axis_labels
    snapshot = png_of(viewer.snapshot(tmp_path / "viewer.png"))
    assert snapshot[..., :3].max() > 100  # the well's cells are drawn

    shot = grab(browser, tmp_path / "browser.png")
    assert has_colour(shot, SELECTED_OUTLINE, 20) > 30  # the chosen well is outlined
    thumb = grab(browser.thumb, tmp_path / "thumb.png")[..., 0]
    assert thumb.std() > 10  # cells on a background, not a flat square
    instances.close()
    viewer.close()


def test_streaming_to_a_new_viewer_queues_until_it_answers_and_skips_unreadable_files(
    qtbot: Any, ports: Callable[[int], int], plate_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platestream.gui import BrowserWindow, ManagerWindow
    from platestream.gui import _browser_window as browser_module

    port = ports(1)
    monkeypatch.setattr(browser_module, "free_port", lambda first, attempts=20: port)
    manager = ManagerWindow()
    qtbot.addWidget(manager)
    browser = BrowserWindow(manager.instances)
    qtbot.addWidget(browser)
    opened(qtbot, browser, plate_folder)
    browser.grid.select({"B01"})
    browser.target.setCurrentText("a new viewer")
    browser.stream_selected()
    queued = []

    def waiting() -> bool:
        row = manager.instances.row(str(port))
        if row is not None and row.status == "starting" and row.queue > 0:
            queued.append(row.queue)
        return bool(queued)

    qtbot.waitUntil(waiting, timeout=10000)
    assert queued[0] == 5  # B01's 6 images but the cut one, waiting for the viewer
    qtbot.waitUntil(lambda: browser.result is not None, timeout=60000)
    result = browser.result
    assert result.sent == 5 and [p.name for p, _ in result.skipped] == ["demo_plate_B01_s2_w3.tif"]
    assert "not a readable TIFF" in result.skipped[0][1]
    assert any(
        "B01_s2_w3" in browser.skipped.item(i).text() for i in range(browser.skipped.count())
    )
    qtbot.waitUntil(
        lambda: (
            (r := manager.instances.row(str(port))) is not None
            and r.status == "green"
            and r.displayed == 5
        ),
        timeout=90000,
    )
    manager.instances.close()


def test_a_stream_job_stops_between_batches_when_cancelled(
    ports: Callable[[int], int], plate_folder: Path
) -> None:
    from platestream.gui import stream_images

    port = ports(1)
    plate = read_plate(plate_folder)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # the user pressed cancel while the first batch went out

    settings = NapariStreamingConfig(napari_port=port, store="memory", delivery="lossless")
    with NapariStreamVisualizer(settings, persistent=False) as handle:
        handle.start_viewer(async_mode=False)
        assert handle.pong is not None
        assert os.getsid(handle.pong.pid) == handle.pong.pid  # its own session, its own CPU share
        result = stream_images(plate.images, handle, progress, cancel)
        assert result.cancelled and result.sent == 8 and result.total == 36
        shown = handle.wait_shown(8, timeout_s=60)
        assert shown is not None and shown.displayed == 8
    assert seen == [8, 8]
    assert np.all(np.diff(seen) >= 0)


def test_a_plate_named_by_a_pattern_opens_with_it(qtbot: Any, tmp_path: Path) -> None:
    """A plate no built-in convention reads opens with a regular expression's named groups;
    a bad expression is said, and nothing is read."""
    import tifffile

    from platestream.gui import BrowserWindow, Instances

    root = tmp_path / "custom"
    root.mkdir()
    for well in ("B03", "B04", "H12"):
        for site in (1, 2):
            for channel in ("dapi", "actin"):
                tifffile.imwrite(
                    root / f"{well}_s{site}_{channel}.tif", np.zeros((16, 16), np.uint8)
                )
    instances = Instances()
    browser = BrowserWindow(instances)
    qtbot.addWidget(browser)
    browser.open_plate(
        root, pattern="(?P<well>[A-P]\\d\\d)_s(?P<site>\\d+)_(?P<channel>\\w+)\\.tif"
    )
    qtbot.waitUntil(lambda: browser.plate is not None, timeout=20000)
    assert browser.grid.counts == {"B03": 4, "B04": 4, "H12": 4}
    assert browser.grid.shape == (8, 12)  # H12: a 96-well plate
    channels = [
        browser.filters["channel"].itemText(i) for i in range(browser.filters["channel"].count())
    ]
    assert channels == ["all", "actin", "dapi"]
    browser.open_plate(root, pattern="(?P<colour>x)")
    assert "not components" in browser.statusBar().currentMessage()
    instances.close()
