"""The reference system's documented calls run as written (imports and the port aside):
``filemanager.save_batch(data=images, paths=paths, backend='napari_stream')``,
``NapariStreamVisualizer(filemanager, visualizer_config, viewer_title=..., persistent=True,
napari_port=..., replace_layers=False)`` then ``start_viewer(async_mode=True)``, and
``PipelineConfig(napari_streaming=NapariStreamingConfig(enabled=True, persistent=True,
napari_port=...))``; and one ``save_batch`` saves to disk, to an OME-Zarr run store and
to the viewer at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from platestream import FileManager, NapariStreamingConfig, NapariStreamVisualizer, PipelineConfig

from .conftest import GUI
from .streaming import layers

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]


def test_the_reference_calls_run_as_written(ports: Callable[[int], int], tmp_path: Path) -> None:
    port = ports(1)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 4000, (64, 64), dtype=np.uint16) for _ in range(4)]
    paths = [
        str(tmp_path / "out" / f"screen_{well}_s{site}_w1.tif")
        for well in ("A01", "B02")
        for site in (1, 2)
    ]
    filemanager = FileManager(zarr_store=tmp_path / "run")
    visualizer_config = NapariStreamingConfig(delivery="lossless")

    # --- as the reference documents them ---
    visualizer = NapariStreamVisualizer(
        filemanager,
        visualizer_config,  # Configuration for streaming behavior
        viewer_title="OpenHCS Pipeline Visualization",
        persistent=True,
        napari_port=port,
        replace_layers=False,
    )
    visualizer.start_viewer(async_mode=True)  # Non-blocking startup
    filemanager.save_batch(data=images, paths=paths, backend="napari_stream")
    pipeline_config = PipelineConfig(
        napari_streaming=NapariStreamingConfig(enabled=True, persistent=True, napari_port=port)
    )
    # ---
    try:
        assert pipeline_config.napari_streaming.napari_port == port
        assert visualizer.wait_ready(60), visualizer.error
        shown = visualizer.wait_shown(4, timeout_s=60)
        assert shown is not None and shown.displayed == 4
        (layer,) = [info for info in layers(port).layers if info.streamed]
        assert layer.shape[:2] == (2, 2)  # wells x sites: each image in its place
        assert visualizer.title == "OpenHCS Pipeline Visualization"
        assert visualizer.config.replace_layers is False and visualizer.port == port

        # One call: saved as TIFFs, into the run store, and streamed (4 more shown).
        again = [image + 1 for image in images]
        reports = filemanager.save_batch(
            data=again, paths=paths, backend=["disk", "zarr", "napari_stream"], step_name="raw"
        )
        assert reports["disk"] == 4 and reports["zarr"] == 4
        for path, image in zip(paths, again, strict=True):
            np.testing.assert_array_equal(tifffile.imread(path), image)
        shown = visualizer.wait_shown(8, timeout_s=60)
        assert shown is not None and shown.displayed == 8
    finally:
        filemanager.close()
        visualizer.stop()

    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    plate_dirs = [p for p in (tmp_path / "run").iterdir() if (p / "zarr.json").exists()]
    (plate_dir,) = plate_dirs
    plate = next(iter(Reader(parse_url(str(plate_dir)))()))
    assert set(plate.specs[0].well_paths) == {"A/1", "B/2"}
    import yaozarrs

    yaozarrs.validate_zarr_store(str(plate_dir))


def test_an_unknown_backend_is_refused_before_anything_is_saved(tmp_path: Path) -> None:
    filemanager = FileManager()
    path = tmp_path / "x_A01_s1_w1.tif"
    with pytest.raises(ValueError, match=r"no file backend 'tape'; known: disk, napari_stream"):
        filemanager.save_batch([np.zeros((4, 4))], [path], backend=["disk", "tape"])
    assert not path.exists()
