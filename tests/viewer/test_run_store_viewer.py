"""End to end: a plate larger than the viewer's memory budget streams into a viewer with a
disk run store; what it shows is right; the run reopens in a new viewer (pixels read back
from disk) and a well-kept OME-Zarr reader reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from platestream.layering import ImageItem
from platestream.viewer.manager import open_run
from platestream.viewer.manager._visualizer import NapariStreamVisualizer, stop_viewer

from ..waiting import wait_until
from .conftest import GUI
from .streaming import config, layers, png_of
from .test_viewer_process import COMPOSITE, assert_square_drawn

pytestmark = GUI

SIDE = 1024
WELLS, SITES, CHANNELS = ["A01", "A02", "B03"], [1, 2, 3, 4], ["DAPI", "GFP"]
BUDGET_MB = 24  # the plate is 48 MiB: twice what the viewer may keep in RAM


def big_plate() -> tuple[list[np.ndarray], list[ImageItem]]:
    """``streaming.plate``'s pattern at 1024 px: 100 with a square of 1000 (A01 site 1) or
    200 (elsewhere) at the same fractions of the image, one corner pixel 0."""
    rows, cols = slice(SIDE // 8, 3 * SIDE // 8), slice(5 * SIDE // 8, 7 * SIDE // 8)
    arrays, items = [], []
    for well in WELLS:
        for site in SITES:
            for channel in CHANNELS:
                array = np.full((SIDE, SIDE), 100, np.uint16)
                array[-1, -1] = 0
                array[rows, cols] = 1000 if (well, site) == ("A01", 1) else 200
                components = {"well": well, "site": site, "channel": channel}
                items.append(ImageItem(components, 0, "raw", array.shape, "uint16"))
                arrays.append(array)
    return arrays, items


def status_of(visualizer: NapariStreamVisualizer) -> Any:
    status = visualizer.status()
    assert status is not None
    return status


def test_a_plate_larger_than_memory_is_stored_shown_reopened_and_read(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(2)
    runs = tmp_path / "runs"
    runs.mkdir()
    colormaps = {"DAPI": "green", "GFP": "magenta"}
    settings = config(
        port, channel_colormaps=colormaps, store_dir=str(runs), viewer_memory_mb=BUDGET_MB
    )
    arrays, items = big_plate()
    total = len(items)
    with NapariStreamVisualizer(settings, title="big plate", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        assert visualizer.pong is not None, visualizer.error
        for start in range(0, total, 4):
            report = visualizer.save_batch(arrays[start : start + 4], items[start : start + 4])
            assert report is not None and report.sent == 4
            if not start:  # napari centres the sliders on its first layer: let A01 be it
                wait_until(
                    lambda: status_of(visualizer).state.display.displayed == 4, 30, "A01 shown"
                )

        def all_stored() -> bool:
            display = status_of(visualizer).state.display
            return display.stored == total and display.store_queued_bytes == 0

        wait_until(all_stored, 60, f"{total} planes written to the run store")
        status = status_of(visualizer)
        display = status.state.display
        assert display.displayed == total and status.dropped == {}
        assert display.store == "disk" and display.unstored == {} and not display.store_error
        assert display.memory_budget_bytes == BUDGET_MB << 20
        assert display.cache_bytes <= BUDGET_MB << 20  # the plate is twice the budget
        run = Path(display.store_path)
        assert run.parent == runs and run.name.endswith("_big-plate")
        before = {layer.name: layer for layer in layers(port).layers if layer.streamed}
        assert {layer.shape for layer in before.values()} == {(3, 4, SIDE, SIDE)}
        picture = png_of(visualizer.snapshot(tmp_path / "live.png"))
        assert_square_drawn(picture, color=COMPOSITE)  # A01 site 1, both channels added

    # The run reopens in a new viewer process: nothing in its RAM, every pixel from disk.
    reopened_port = port + 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(
        [
            *(sys.executable, "-m", "platestream", "open", str(run), "--detach"),
            *("--port", str(reopened_port), "--memory-mb", str(BUDGET_MB)),
        ],
        check=True,
        timeout=120,
        env=env,
        capture_output=True,
    )
    try:
        after = {layer.name: layer for layer in layers(reopened_port).layers if layer.streamed}
        assert sorted(after) == sorted(before)
        for name, layer in after.items():
            assert layer.shape == before[name].shape
            assert layer.axis_labels == before[name].axis_labels
            assert layer.colormap == before[name].colormap
            assert layer.contrast_limits == before[name].contrast_limits
        shot = tmp_path / "reopened.png"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "platestream",
                "viewer",
                "snapshot",
                str(reopened_port),
                str(shot),
            ],
            check=True,
            timeout=120,
            env=env,
            capture_output=True,
        )
        assert_square_drawn(png_of(shot), color=COMPOSITE)
    finally:
        assert stop_viewer("127.0.0.1", reopened_port, timeout_s=20.0)

    # From Python: open the run again and continue it - a new well is appended, nothing
    # already written is rewritten.
    chunk = run / "s00_raw" / "A" / "1" / "0" / "0" / "c" / "0" / "0" / "0" / "0" / "0"
    written_at = chunk.stat().st_mtime_ns
    more = config(port, channel_colormaps=colormaps, store_dir=str(runs))
    with open_run(run.name, more, persistent=False) as continued:
        assert continued.port == port  # the first free port from napari_port on
        extra = ImageItem(
            {"well": "C01", "site": 1, "channel": "DAPI"}, 0, "raw", (SIDE, SIDE), "uint16"
        )
        report = continued.save_batch([arrays[0]], [extra])
        assert report is not None and report.sent == 1

        def appended() -> bool:
            display = status_of(continued).state.display
            return display.stored == 1 and display.store_queued_bytes == 0

        wait_until(appended, 60, "the new well written to the reopened run")
        shapes = {layer.shape for layer in layers(port).layers if layer.streamed}
        assert shapes == {(4, 4, SIDE, SIDE)}
        assert status_of(continued).state.display.store_path == str(run)
    assert chunk.stat().st_mtime_ns == written_at

    # A well-kept OME-Zarr reader finds every well, field and channel with its pixels.
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    plate = next(iter(Reader(parse_url(str(run / "s00_raw")))()))
    assert sorted(plate.specs[0].well_paths) == ["A/1", "A/2", "B/3", "C/1"]
    assert plate.metadata["channel_names"] == CHANNELS
    import zarr

    root = zarr.open_group(run / "s00_raw", mode="r")
    for array, image in zip(arrays, items, strict=True):
        well, site, channel = (image.lookup[k] for k in ("well", "site", "channel"))
        path = f"{well[0]}/{int(well[1:])}/{SITES.index(site)}"
        stored = root[path]["0"][0, CHANNELS.index(channel), 0]
        np.testing.assert_array_equal(stored, array)
        assert root[path]["2"].shape[-2:] == (SIDE // 4, SIDE // 4)  # the pyramid
