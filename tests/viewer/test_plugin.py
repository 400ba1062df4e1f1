"""The napari plugin: the user's own napari becomes a platestream viewer while the dock
widget listens; the manifest validates; the sample plate opens."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.backend import request_once
from platestream.schemas import LayersRequest, Snapshot, SnapshotReply, StatusReport, StatusRequest
from platestream.viewer.manager._ports import bindable

from .conftest import GUI
from .streaming import png_of

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]
ROOT = Path(__file__).parents[2]
DOCS_PICTURE = ROOT / "docs" / "images" / "plugin.png"

PRODUCER = r"""
import sys
import numpy as np
from platestream.backend import NapariStreamingBackend
from platestream.config import NapariStreamingConfig

port = int(sys.argv[1])
config = NapariStreamingConfig(napari_port=port, delivery="lossless", overview=False,
                               channel_colormaps={"DAPI": "blue", "GFP": "green"})
with NapariStreamingBackend(config) as backend:
    for well in ("A01", "A02", "B01"):
        arrays, targets = [], []
        for channel, value in (("DAPI", 900), ("GFP", 500)):
            plane = np.full((64, 64), 50, np.uint16)
            plane[16:48, 16:48] = value
            arrays.append(plane)
            targets.append({"well": well, "channel": channel})
        report = backend.save_batch(arrays, targets, step_index=1, step_name="raw")
        assert report.sent == 2, report
print("sent")
"""


def _in_thread(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a blocking request off the GUI thread (the viewer answers some on it)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except Exception as err:  # reported by the test that waits for it
            box["error"] = err

    threading.Thread(target=run, daemon=True).start()
    return box


def test_the_widget_makes_napari_a_viewer_beside_the_users_layers(
    make_napari_viewer: Any, qtbot: Any, ports: Callable[[int], int], tmp_path: Path
) -> None:
    from platestream.viewer.plugin import ReceiverWidget

    viewer = make_napari_viewer(show=True)
    mine = viewer.add_image(np.arange(64 * 64, dtype=np.float32).reshape(64, 64), name="mine")
    widget = ReceiverWidget(viewer)
    viewer.window.add_dock_widget(widget, name="platestream receiver", area="right")
    port = ports(1)
    widget.port.setValue(port)
    assert widget.start() and not bindable(port)

    producer = subprocess.run(
        [sys.executable, "-c", PRODUCER, str(port)], capture_output=True, text=True, timeout=120
    )
    assert producer.returncode == 0, producer.stderr

    def status() -> StatusReport:
        reply = request_once("127.0.0.1", port, StatusRequest(), timeout_s=5).message
        assert isinstance(reply, StatusReport)
        return reply

    qtbot.waitUntil(lambda: status().state.display.displayed == 6, timeout=60000)
    streamed = {layer.name for layer in viewer.layers if layer.metadata.get("platestream")}
    assert streamed == {"Step_01_raw_Channel_DAPI", "Step_01_raw_Channel_GFP"}
    assert viewer.layers[0] is mine and mine.data.shape == (64, 64)  # untouched
    assert viewer.layers["Step_01_raw_Channel_GFP"].data.shape[0] == 3  # wells stacked

    layers = _in_thread(lambda: request_once("127.0.0.1", port, LayersRequest(), timeout_s=30))
    qtbot.waitUntil(lambda: "value" in layers or "error" in layers, timeout=30000)
    names = [info.name for info in layers["value"].message.layers]
    assert "mine" in names and "Step_01_raw_Channel_DAPI" in names
    shot = _in_thread(
        lambda: request_once("127.0.0.1", port, Snapshot(canvas_only=False), timeout_s=30)
    )
    qtbot.waitUntil(lambda: "value" in shot or "error" in shot, timeout=30000)
    reply = shot["value"]
    assert isinstance(reply.message, SnapshotReply)
    DOCS_PICTURE.parent.mkdir(exist_ok=True)
    picture_path = tmp_path / "plugin.png"
    picture_path.write_bytes(reply.frames[0])
    picture = png_of(picture_path)[..., :3].astype(int)
    blue = (picture[..., 2] > 150) & (picture[..., 0] < 80)  # DAPI's square, blended
    assert blue.any() and len(np.unique(picture.reshape(-1, 3), axis=0)) > 50

    widget.stop()
    assert bindable(port) and bindable(port + 1000)  # stop listening frees the ports
    assert viewer.layers["mine"] is mine and streamed <= {layer.name for layer in viewer.layers}


def test_the_manifest_validates_and_the_sample_plate_opens(make_napari_viewer: Any) -> None:
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("platestream")
    assert manifest.name == "platestream"
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "platestream"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr
    viewer = make_napari_viewer()
    viewer.open_sample("platestream", "plate")
    names = [layer.name for layer in viewer.layers]
    assert names == ["sample DAPI", "sample GFP", "sample RFP"]
    assert viewer.layers["sample GFP"].data.shape == (6, 2, 256, 256)
    assert viewer.layers["sample GFP"].data.max() > 0


def test_a_run_store_opens_in_napari_as_the_viewer_showed_it(
    make_napari_viewer: Any, ports: Callable[[int], int], tmp_path: Path
) -> None:
    """``napari RUN_DIR``: the reader gives the run's layers, with their names, shapes,
    colormaps and pixels, read lazily from disk."""
    from platestream.config import NapariStreamingConfig
    from platestream.viewer.manager import NapariStreamVisualizer

    port = ports(1)
    config = NapariStreamingConfig(
        napari_port=port,
        delivery="lossless",
        overview=False,
        store_dir=str(tmp_path),
        channel_colormaps={"DAPI": "blue", "GFP": "green"},
    )
    planes = {}
    with NapariStreamVisualizer(config, title="reader", persistent=False) as viewer:
        viewer.start_viewer(async_mode=False)
        for number, well in enumerate(("A01", "A02", "B01")):
            arrays, targets = [], []
            for channel in ("DAPI", "GFP"):
                plane = np.full((32, 48), 10 * number + len(channel), np.uint16)
                plane[0, 0] = 1000
                planes[(well, channel)] = plane
                arrays.append(plane)
                targets.append({"well": well, "channel": channel})
            viewer.save_batch(arrays, targets, step_index=2, step_name="blur")
        shown = viewer.wait_shown(6, timeout_s=60)
        assert shown is not None and shown.displayed == 6

        def stored() -> bool:
            status = viewer.status()
            return status is not None and status.state.display.stored == 6

        from ..waiting import wait_until

        wait_until(stored, 60, "6 planes in the run store")
        run = Path(viewer.status().state.display.store_path)  # type: ignore[union-attr]
    napari_viewer = make_napari_viewer()
    napari_viewer.open(str(run), plugin="platestream")
    layers = {layer.name: layer for layer in napari_viewer.layers}
    assert set(layers) == {"Step_02_blur_Channel_DAPI", "Step_02_blur_Channel_GFP"}
    dapi = layers["Step_02_blur_Channel_DAPI"]
    assert dapi.colormap.name == "blue" and dapi.data.shape == (3, 32, 48)
    for index, well in enumerate(("A01", "A02", "B01")):
        np.testing.assert_array_equal(np.asarray(dapi.data[index]), planes[(well, "DAPI")])
