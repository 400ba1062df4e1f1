"""The viewer's Qt side in the test process: user changes, the GUI thread, the window."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from platestream.backend import NapariStreamingBackend, Receiver, ReceiverOptions, request_once
from platestream.config import resolve_current
from platestream.schemas import Clear, Ok
from platestream.viewer.manager._ports import bindable
from platestream.viewer.manager._records import read_record
from platestream.viewer.process import _app as app

from .conftest import GUI
from .streaming import config, plate

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(120)]


@pytest.fixture
def wired(make_napari_viewer: Callable[..., Any]) -> Any:
    viewer = make_napari_viewer()
    receiver = Receiver(ReceiverOptions(port=0)).start()
    pump, _caption = app.assemble(viewer, receiver, "in process")
    backend = NapariStreamingBackend(resolve_current(config(receiver.data_port)).value)
    yield viewer, pump, backend
    backend.close()
    pump.close()
    receiver.close()


def test_user_changes_survive_more_data_and_layers_stay_on_the_gui_thread(
    wired: Any, qtbot: Any
) -> None:
    viewer, pump, backend = wired
    backend.save_batch(*plate([(0, "raw")], ["A01"], [1, 2], [1]))
    qtbot.waitUntil(lambda: pump.stats.displayed == 2, timeout=20000)
    panel = viewer.window.dock_widgets["platestream"]
    panel.refresh()
    assert panel.labels["displayed"].text() == "2" and panel.labels["producers"].text() == "1"
    assert panel.labels["layers"].text() == "2" and panel.labels["dropped"].text() == "0"
    assert panel.labels["slice"].text().startswith("Step 00_raw | Well A01 | Channel ")
    one, two = (pump.applier.layers[f"Step_00_raw_Channel_{c}"] for c in (1, 2))
    one.contrast_limits = (5, 50)
    one.colormap = "cyan"
    two.visible = False
    viewer.layers.move(viewer.layers.index(two), 0)
    order = [layer.name for layer in viewer.layers]

    backend.save_batch(*plate([(0, "raw")], ["A02", "A01"], [1, 2], [1, 2]))  # grows
    qtbot.waitUntil(lambda: pump.stats.displayed == 10, timeout=20000)
    assert pump.applier.layers["Step_00_raw_Channel_1"] is one
    assert tuple(one.contrast_limits) == (5, 50)
    assert one.colormap.name == "cyan"
    assert not two.visible
    assert [layer.name for layer in viewer.layers] == order
    assert one.data.shape == (2, 2, 64, 64)
    assert viewer.dims.axis_labels == ("Well", "Site", "Y", "X")

    errors: list[BaseException] = []

    def from_a_worker() -> None:
        try:
            pump.apply()
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=from_a_worker)
    worker.start()
    worker.join(10)
    assert errors and isinstance(errors[0], RuntimeError)


def test_a_live_stream_of_one_plane_keeps_one_array(wired: Any, qtbot: Any) -> None:
    viewer, pump, backend = wired
    frame = np.zeros((256, 256), np.uint16)
    _arrays, items = plate([(0, "raw")], ["A01"], [1], [1])
    for value in range(300):
        frame[:] = value
        backend.save_batch([frame], items)
    qtbot.waitUntil(lambda: pump.receiver.queue.nbytes == 0 and pump.stats.displayed > 0)
    (layer,) = pump.applier.layers.values()
    data = layer.data
    backend.save_batch([frame], items)
    qtbot.waitUntil(lambda: int(layer.data[0, 0, 0, 0]) == 299, timeout=20000)
    assert layer.data is data and len(viewer.layers) == 1


def test_clear_empties_the_viewer_and_streaming_goes_on(wired: Any, qtbot: Any) -> None:
    viewer, pump, backend = wired
    mine = viewer.add_image(np.zeros((8, 8)), name="mine")
    backend.save_batch(*plate([(0, "raw")], ["A01"], [1], [1]))
    qtbot.waitUntil(lambda: pump.stats.displayed == 1, timeout=20000)
    replies: list[Any] = []
    port = pump.receiver.data_port
    asking = threading.Thread(
        target=lambda: replies.append(request_once("127.0.0.1", port, Clear(), timeout_s=20))
    )
    asking.start()
    qtbot.waitUntil(lambda: bool(replies), timeout=20000)
    asking.join(5)
    assert isinstance(replies[0].message, Ok)
    assert list(viewer.layers) == [mine] and not pump.applier.layers
    # after a clear (the caption is hidden, not empty), new layers come up as before
    backend.save_batch(*plate([(0, "raw")], ["A01", "A02"], [1], [1, 2]))
    qtbot.waitUntil(lambda: pump.stats.displayed == 5, timeout=20000)
    (layer,) = pump.applier.layers.values()
    assert layer.data.shape == (2, 2, 64, 64)


CLOSE_THE_WINDOW = """
import sys
from qtpy.QtCore import QTimer
from platestream.viewer.process import _app as app
from platestream.viewer.manager._records import read_record

def close_soon(viewer):
    print("record", read_record(int(sys.argv[1])).title, flush=True)
    QTimer.singleShot(0, viewer.window._qt_window.close)  # as a user closing the window

sys.exit(app.main(["--port", sys.argv[1], "--title", "closing"], on_ready=close_soon))
"""


def test_closing_the_window_ends_the_viewer_cleanly(ports: Callable[[int], int]) -> None:
    port = ports(1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", CLOSE_THE_WINDOW, str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "record closing" in done.stdout and '"event": "stopped"' in done.stdout
    assert read_record(port) is None
    assert bindable(port) and bindable(port + 1000)


def test_a_plane_not_arrived_yet_says_so_in_the_caption(wired: Any, qtbot: Any) -> None:
    viewer, pump, backend = wired
    arrays, items = plate([(0, "raw")], ["A01", "A02"], [1], [1, 2])
    first = [0, 3]  # A01 site 1 and A02 site 2: A01 site 2 has not arrived
    backend.save_batch([arrays[i] for i in first], [items[i] for i in first])
    qtbot.waitUntil(lambda: pump.stats.displayed == 2, timeout=20000)
    panel = viewer.window.dock_widgets["platestream"]
    viewer.dims.set_current_step(0, 0)
    viewer.dims.set_current_step(1, 1)  # A01 site 2
    caption = panel.labels["slice"]
    assert caption.text() == "Step 00_raw | Well A01 | Channel 1 | Site 002 | not yet"
    (layer,) = viewer.layers
    assert not np.asarray(layer._slice.image.raw).any()  # drawn as zeros meanwhile
    backend.save_batch([arrays[1]], [items[1]])
    qtbot.waitUntil(lambda: pump.stats.displayed == 3, timeout=20000)
    qtbot.waitUntil(lambda: not caption.text().endswith("not yet"), timeout=20000)
    assert caption.text() == "Step 00_raw | Well A01 | Channel 1 | Site 002"


def test_a_declared_layout_makes_layers_whole_at_once_then_only_fills_them(
    wired: Any, qtbot: Any
) -> None:
    viewer, pump, backend = wired
    wells, sites = ["A01", "A02", "B01", "H12"], [1, 2, 3]
    backend.declare_layout({"well": wells, "site": sites, "channel": [1, 2]})
    arrays, items = plate([(0, "raw")], wells, [1, 2], sites)
    by_well = {
        well: [i for i, item in enumerate(items) if item.lookup["well"] == well] for well in wells
    }
    first = by_well["B01"]
    backend.save_batch([arrays[i] for i in first], [items[i] for i in first])
    qtbot.waitUntil(lambda: pump.stats.displayed == len(first), timeout=20000)
    layers = dict(pump.applier.layers)
    assert sorted(layers) == ["Step_00_raw_Channel_1", "Step_00_raw_Channel_2"]
    data = {name: layer.data for name, layer in layers.items()}
    for layer in layers.values():  # the whole plate from its first well on
        assert layer.data.shape == (4, 3, 64, 64)
    assert viewer.dims.range[0].stop == 3 and viewer.dims.axis_labels[:2] == ("Well", "Site")
    reassigned = pump.applier.reassigned
    for well in ("H12", "A01", "A02"):
        batch = by_well[well]
        backend.save_batch([arrays[i] for i in batch], [items[i] for i in batch])
    qtbot.waitUntil(lambda: pump.stats.displayed == len(items), timeout=20000)
    assert pump.applier.reassigned == reassigned  # no layer was regrown or re-assigned
    assert all(layers[name].data is data[name] for name in layers)
    viewer.dims.set_current_step(0, 0)
    viewer.dims.set_current_step(1, 0)
    np.testing.assert_array_equal(np.asarray(layers["Step_00_raw_Channel_1"].data[0, 0]), arrays[0])


def test_a_reopened_run_shows_its_first_well_at_once_and_places_the_rest_after(
    make_napari_viewer: Callable[..., Any], qtbot: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from platestream.layering import ImageItem
    from platestream.schemas import display_to_wire
    from platestream.store import RunStore
    from platestream.viewer.layer_model import open_source
    from platestream.viewer.process import _pump

    display = display_to_wire(resolve_current(config(5555)).value)
    run = tmp_path / "run"
    store = RunStore(run, title="reopen")
    wells, sites, channels = ["A01", "A02", "B01"], [1, 2], [1, 2]
    for w, well in enumerate(wells):
        for site in sites:
            for channel in channels:
                components = {"well": well, "site": site, "channel": channel}
                item = ImageItem(components, 0, "raw", (40, 30), "uint16")
                location, _ = store.locate(item, display)
                assert location is not None
                value = 100 * w + 10 * site + channel
                store.put(location, np.full((40, 30), value, np.uint16), lambda ok: None)
    store.close()
    monkeypatch.setattr(_pump, "REOPEN_SLICE", 2)  # the rest of the plate in three slices
    viewer = make_napari_viewer()
    receiver = Receiver(ReceiverOptions(port=0))
    source = open_source("disk", "", "reopen", "lz4", 64, str(run))
    pump, _caption = app.assemble(viewer, receiver, "reopen", source)
    try:
        assert app._reopen(pump, source) == 12
        stored = pump.plans.store.layers
        assert sorted(stored) == ["Step_00_raw_Channel_1", "Step_00_raw_Channel_2"]
        for layer in stored.values():  # the whole plate's shape, the first well's planes
            assert layer.array is not None and layer.array.shape == (3, 2, 40, 30)
            assert len(layer.array.entries) == 2
        qtbot.waitUntil(
            lambda: all(len(layer.array.entries) == 6 for layer in stored.values()),
            timeout=20000,
        )
        data = pump.applier.layers["Step_00_raw_Channel_2"].data
        assert int(np.asarray(data[2, 1])[0, 0]) == 200 + 20 + 2  # B01, site 2, channel 2
    finally:
        pump.close()
        receiver.close()
        source.close()
