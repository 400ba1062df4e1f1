"""Large planes are multiscale layers: zoomed out, napari reads a small pyramid level."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.backend import ReceivedImage
from platestream.store import RunStore
from platestream.viewer.layer_model import LayerStore, NapariApplier, Plans, StoredPlanes
from tests.layering.layering_helpers import config, image

from .conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(120)]
SIDE = 4096  # above MULTISCALE_ABOVE: levels 4096, 2048, 1024, 512, 256


class CountingPlanes(StoredPlanes):
    def __init__(self, run: RunStore, budget: int) -> None:
        super().__init__(run, budget)
        self.reads: Counter[int] = Counter()

    def get(self, ref: Hashable, level: int = 0) -> Any:
        self.reads[level] += 1
        return super().get(ref, level)


def test_zoomed_out_napari_reads_a_small_level_zoomed_in_the_full_one(
    make_napari_viewer: Callable[..., Any], qtbot: Any, tmp_path: Path
) -> None:
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(800, 600)
    run = RunStore(tmp_path / "run", title="multiscale")
    source = CountingPlanes(run, 512 << 20)
    plans = Plans(LayerStore(source))
    applier = NapariApplier(viewer, plans)
    plane = np.zeros((SIDE, SIDE), np.uint16)
    plane[: SIDE // 2, : SIDE // 2] = 1000  # the top-left quarter is bright
    item = image((0, "raw"), (SIDE, SIDE), "uint16", well="A01", channel="DAPI")
    plans.add(config(), [ReceivedImage(item, plane)])
    applier.flush()
    (layer,) = viewer.layers
    assert layer.multiscale and len(layer.data) == 5
    assert [level.shape for level in layer.data] == [(1, SIDE >> k, SIDE >> k) for k in range(5)]
    viewer.reset_view()
    qtbot.waitUntil(lambda: layer.data_level > 0, timeout=20000)
    coarse = layer.data_level
    assert coarse >= 2  # an 800 px canvas shows the 4096 px plane from a ~1024 px level
    source.reads.clear()
    layer.refresh()
    qtbot.waitUntil(lambda: source.reads[coarse] > 0, timeout=20000)
    assert source.reads[0] == 0  # the full plane is never read to draw the whole view
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].max() > 200  # the bright quarter is drawn
    viewer.scene.camera.zoom = viewer.scene.camera.zoom * 16  # zoom into the centre: the full level
    qtbot.waitUntil(lambda: layer.data_level == 0, timeout=20000)
    assert run.flush(60)
    assert run.read(next(iter(run.written)), 4).shape == (256, 256)  # the pyramid on disk
    run.close()
