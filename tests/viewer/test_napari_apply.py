"""The napari-facing half, without a GUI: a spec'd fake viewer and napari's Qt-free model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

import napari
import numpy as np
import pytest
from napari.components import ViewerModel

from platestream.backend import ReceivedImage
from platestream.layering import CreateLayer, ImageItem, LayerKind, PlanState, update
from platestream.viewer.layer_model._napari_apply import (
    LABELS_CONTOUR,
    PLACEHOLDER_CONTRAST,
    SHAPES_PER_FLUSH,
    NapariApplier,
)
from platestream.viewer.layer_model._plans import Plans
from tests.layering.layering_helpers import config, image


def frame(well: str, value: int, site: int = 1, channel: Any = 1, shape=(8, 8)) -> ReceivedImage:
    item = image((0, "raw"), shape, "uint16", well=well, channel=channel, site=site)
    return ReceivedImage(item, np.full(shape, value, np.uint16))


@pytest.fixture
def fake() -> Any:
    """A spec'd napari.Viewer: any call napari does not have fails the test."""
    viewer = mock.create_autospec(napari.Viewer, instance=True)
    # pydantic fields are not class attributes, so autospec cannot see them: plain stand-ins
    viewer.layers = mock.MagicMock()
    viewer.layers.__contains__.return_value = True
    viewer.dims = SimpleNamespace(
        ndim=4, axis_labels=("0", "1", "2", "3"), current_step=(0, 0, 0, 0), not_displayed=(0, 1)
    )

    def add_image(data: Any, **kwargs: Any) -> Any:
        layer = mock.create_autospec(napari.layers.Image, instance=True)
        layer.contrast_limits = kwargs["contrast_limits"]
        layer.contrast_limits_range = (0, 1)
        return layer

    viewer.add_image.side_effect = add_image
    return viewer


def test_a_layer_is_created_once_and_updated_in_place(fake: Any) -> None:
    plans = Plans()
    sink = NapariApplier(fake, plans)
    plans.add(config(), [frame("A01", 100)])
    sink.flush()
    assert fake.add_image.call_count == 1
    kwargs = fake.add_image.call_args.kwargs
    assert kwargs["name"] == "Step_00_raw_Channel_1"
    assert kwargs["colormap"] == "gray"
    assert kwargs["contrast_limits"] == (100.0, 101.0)
    layer = fake.add_image.return_value if False else next(iter(sink.layers.values()))
    assert layer.axis_labels == ("Well", "Site", "Y", "X")
    assert fake.dims.axis_labels == ("Well", "Site", "Y", "X")
    for value in range(20):  # a live stream of one plane: refresh only
        plans.add(config(), [frame("A01", value)])
        sink.flush()
    assert fake.add_image.call_count == 1
    assert layer.refresh.call_count == 20
    assert layer.contrast_limits == (100.0, 101.0)  # never set again


def test_data_is_assigned_only_when_the_shape_grows(fake: Any) -> None:
    plans = Plans()
    sink = NapariApplier(fake, plans)
    plans.add(config(), [frame("A01", 1)])
    sink.flush()
    layer = next(iter(sink.layers.values()))
    assigned = []
    type(layer).data = mock.PropertyMock(side_effect=assigned.append)
    plans.add(config(), [frame("A02", 2), frame("A03", 3)])  # two new wells, one frame
    sink.flush()
    assert len(assigned) == 1 and assigned[0].shape == (3, 1, 8, 8)
    assert layer.refresh.call_count == 0
    plans.add(config(), [frame("A02", 5)])  # well 1: the sliders show well 0
    sink.flush()
    assert len(assigned) == 1 and layer.refresh.call_count == 0  # off screen: napari idle
    plans.add(config(), [frame("A01", 6)])  # the plane on screen
    sink.flush()
    assert len(assigned) == 1 and layer.refresh.call_count == 1
    assert fake.add_image.call_count == 1


def test_a_write_refreshes_napari_only_when_its_plane_is_on_screen() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    plans.add(config(), [frame(f"A{w:02d}", w) for w in range(1, 9)])
    sink.flush()
    (layer,) = viewer.layers
    viewer.dims.set_current_step(0, 5)  # the user looks at A06
    shown = []
    layer.events.set_data.connect(lambda _: shown.append(1))
    before = sink.refreshed
    for w in (1, 2, 3, 4, 5, 7, 8):  # a plate streams in elsewhere
        plans.add(config(), [frame(f"A{w:02d}", 100 + w)])
        sink.flush()
    assert sink.refreshed == before and not shown
    plans.add(config(), [frame("A06", 106)])
    sink.flush()
    assert sink.refreshed == before + 1
    assert int(np.asarray(layer._slice.image.raw).max()) == 106  # what napari draws
    viewer.dims.set_current_step(0, 2)  # the slider moves: napari reads the new plane
    assert int(np.asarray(layer._slice.image.raw).max()) == 103


def test_nothing_new_means_no_napari_call(fake: Any) -> None:
    sink = NapariApplier(fake, Plans(), check_thread=mock.Mock(side_effect=AssertionError))
    sink.flush()  # no changes: not even the thread check runs
    fake.add_image.assert_not_called()


def test_apply_path_checks_the_thread(fake: Any) -> None:
    check = mock.Mock()
    plans = Plans()
    sink = NapariApplier(fake, plans, check_thread=check)
    plans.add(config(), [frame("A01", 1)])
    sink.flush()
    check.assert_called_once()


def test_user_changes_survive_streaming_on_a_real_viewer_model() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    plans.add(config(), [frame("A01", 10, channel="DAPI"), frame("A01", 20, channel="GFP")])
    sink.flush()
    dapi, gfp = viewer.layers["Step_00_raw_Channel_DAPI"], viewer.layers["Step_00_raw_Channel_GFP"]
    dapi.contrast_limits = (3, 7)
    dapi.colormap = "magenta"
    gfp.visible = False
    viewer.layers.move(viewer.layers.index(gfp), 0)
    order = [layer.name for layer in viewer.layers]
    wells = [frame(w, 50, channel=c) for w in ("B01", "A02", "C07") for c in ("DAPI", "GFP")]
    plans.add(config(), wells)  # the stack grows (inserted wells): layer.data replaced
    sink.flush()
    plans.add(config(), [frame("A01", 99, channel="DAPI")])
    sink.flush()
    assert viewer.layers["Step_00_raw_Channel_DAPI"] is dapi
    assert tuple(dapi.contrast_limits) == (3, 7)
    assert dapi.colormap.name == "magenta"
    assert not gfp.visible
    assert [layer.name for layer in viewer.layers] == order
    assert dapi.data.shape == (4, 1, 8, 8)
    assert int(dapi.data[0, 0].max()) == 99 and int(dapi.data[1, 0].max()) == 50
    assert viewer.dims.axis_labels == ("Well", "Site", "Y", "X")


@pytest.mark.parametrize("user_first", [False, True])
def test_first_contrast_waits_for_data_but_respects_the_user(user_first: bool) -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    item = image((0, "raw"), (4, 4), "uint16", well="A01", channel=1)
    ops = update(PlanState.empty(config()), [item]).ops
    creates = [op for op in ops if isinstance(op, CreateLayer)]
    plans.store.apply(creates, lambda _: None)  # a layer shown before any plane arrived
    sink.flush()
    layer = viewer.layers[creates[0].name]
    assert tuple(layer.contrast_limits) == PLACEHOLDER_CONTRAST
    if user_first:
        layer.contrast_limits = (0, 0.5)
    writes = [op for op in ops if not isinstance(op, CreateLayer)]
    plans.store.apply(writes, lambda _: np.full((4, 4), 300, np.uint16))
    sink.flush()
    assert tuple(layer.contrast_limits) == ((0, 0.5) if user_first else (300, 301))
    plans.store.apply(writes, lambda _: np.full((4, 4), 9000, np.uint16))
    sink.flush()
    assert tuple(layer.contrast_limits) == ((0, 0.5) if user_first else (300, 301))


def test_points_and_shapes_layers() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    pts = ImageItem(
        {"well": "A01", "channel": 1}, 0, "raw", (2, 2), "float64", kind=LayerKind.POINTS
    )
    shp = ImageItem(
        {"well": "A02", "channel": 1}, 0, "raw", (4, 2), "float64", kind=LayerKind.SHAPES
    )
    square = np.array([[0, 0], [0, 3], [3, 3], [3, 0]], float)
    plans.add(
        config(),
        [
            ReceivedImage(pts, np.array([[1.0, 2.0], [3.0, 4.0]])),
            ReceivedImage(shp, square),
        ],
    )
    sink.flush()
    points = viewer.layers["Step_00_raw_Channel_1_Points"]
    shapes = viewer.layers["Step_00_raw_Channel_1_Shapes"]
    assert points.data.shape == (2, 3)  # well axis + (y, x)
    np.testing.assert_array_equal(points.data[:, 0], [0, 0])
    assert len(shapes.data) == 1 and shapes.data[0][0, 0] == 1  # at well index 1 (A02)
    assert shapes.shape_type == ["polygon"]
    more = ImageItem(
        {"well": "A01", "channel": 1}, 0, "raw", (1, 2), "float64", kind=LayerKind.POINTS
    )
    plans.add(config(), [ReceivedImage(more, np.array([[5.0, 5.0]]))])  # replaces A01's points
    sink.flush()
    assert viewer.layers["Step_00_raw_Channel_1_Points"] is points
    assert points.data.shape == (1, 3)


def _shapes(well: str, polygons: int, at: float) -> ReceivedImage:
    item = ImageItem(
        {"well": well, "channel": 1}, 0, "raw", (polygons, 4, 2), "float64", kind=LayerKind.SHAPES
    )
    square = np.array([[0, 0], [0, 3], [3, 3], [3, 0]], float) + at
    return ReceivedImage(item, np.stack([square + i for i in range(polygons)]))


def _wells_of(layer: Any) -> list[float]:
    return sorted(float(polygon[0, 0]) for polygon in layer.data)


def test_a_plate_of_polygons_is_given_to_napari_a_bounded_number_per_flush() -> None:
    """4,096 polygons in one message: napari gets at most SHAPES_PER_FLUSH per flush (each
    costs it ~0.3 ms in Python), the rest are counted as waiting; in the end it holds
    exactly the stored polygons, each once."""
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    wells = [f"{row}{col:02d}" for row in "ABCDEFGHIJKLMNOP" for col in range(1, 25)]
    plans.add(config(), [_shapes(well, 16, i) for i, well in enumerate(wells[:256])])
    sink.flush()
    layer = viewer.layers["Step_00_raw_Channel_1_Shapes"]
    sizes = [len(layer.data)]
    pending = [sink.shapes_pending]
    while sink.busy:
        sink.flush()
        sizes.append(len(layer.data))
        pending.append(sink.shapes_pending)
    steps = np.diff([0, *sizes])
    assert max(steps) <= SHAPES_PER_FLUSH and len(sizes) == 4096 // SHAPES_PER_FLUSH
    assert pending[0] == 4096 - SHAPES_PER_FLUSH and pending[-1] == 0
    assert np.all(np.diff(pending) == -SHAPES_PER_FLUSH)
    assert _wells_of(layer) == sorted(float(w) for w in range(256) for _ in range(16))
    assert layer.edge_color[-1].tolist() == [1, 1, 0, 1] and layer.face_color[-1][3] == 0


def test_a_rewritten_plane_replaces_only_its_polygons_and_a_new_axis_value_moves_them() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    plans.add(config(), [_shapes("A02", 2, 0), _shapes("A03", 3, 10)])
    sink.flush()
    layer = viewer.layers["Step_00_raw_Channel_1_Shapes"]
    assert _wells_of(layer) == [0, 0, 1, 1, 1]
    plans.add(config(), [_shapes("A03", 1, 50)])  # A03 rewritten: 3 polygons become 1
    sink.flush()
    assert _wells_of(layer) == [0, 0, 1]
    assert sorted(float(p[1, 1]) for p in layer.data) == [0, 1, 50]
    plans.add(config(), [_shapes("A01", 1, 70)])  # a well before the others: they move
    while True:
        sink.flush()
        if not sink.busy:
            break
    assert _wells_of(layer) == [0, 1, 1, 2]
    assert sorted(float(p[1, 1]) for p in layer.data) == [0, 1, 50, 70]
    layer.data = []  # the user emptied it: given everything again at the next change
    plans.add(config(), [_shapes("A04", 1, 90)])
    sink.flush()
    assert _wells_of(layer) == [0, 1, 1, 2, 3]


def _arrive(
    plans: Plans, sink: NapariApplier, order: list[tuple[int, str, Any, LayerKind]]
) -> list[str]:
    for step, name, channel, kind in order:
        dtype = "uint16" if kind is LayerKind.IMAGE else "int32"
        item = image((step, name), (8, 8), dtype, kind=kind, well="A01", channel=channel)
        plans.add(config(), [ReceivedImage(item, np.ones((8, 8), dtype))])
        while True:
            sink.flush()
            if not sink.busy:
                break
    return [layer.name for layer in sink.viewer.layers]


def test_the_layer_list_has_one_order_whatever_order_images_come_in() -> None:
    """Steps in order, then channels in the order the plate declared them (channel number,
    whatever the names), images under their labels; bottom first."""
    arrivals = [
        (2, "blur", "RFP", LayerKind.IMAGE),
        (3, "nuclei", "DAPI", LayerKind.LABELS),
        (1, "raw", "GFP", LayerKind.IMAGE),
        (2, "blur", "DAPI", LayerKind.IMAGE),
        (1, "raw", "DAPI", LayerKind.IMAGE),
        (3, "nuclei", "DAPI", LayerKind.IMAGE),
    ]
    expected = [
        "Step_01_raw_Channel_DAPI",
        "Step_01_raw_Channel_GFP",
        "Step_02_blur_Channel_DAPI",
        "Step_02_blur_Channel_RFP",
        "Step_03_nuclei_Channel_DAPI",
        "Step_03_nuclei_Channel_DAPI_Labels",
    ]
    for order in (arrivals, arrivals[::-1]):
        plans = Plans()
        plans.declare({"channel": ["DAPI", "GFP", "RFP"]})  # w1, w2, w3
        sink = NapariApplier(ViewerModel(), plans)
        assert _arrive(plans, sink, order) == expected
    plans = Plans()  # undeclared: channel numbers by value, 2 before 10
    sink = NapariApplier(ViewerModel(), plans)
    names = _arrive(plans, sink, [(1, "raw", 10, LayerKind.IMAGE), (1, "raw", 2, LayerKind.IMAGE)])
    assert names == ["Step_01_raw_Channel_2", "Step_01_raw_Channel_10"]


def test_a_user_layer_and_an_order_the_user_set_are_kept() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    _arrive(plans, sink, [(1, "raw", 1, LayerKind.IMAGE), (1, "raw", 3, LayerKind.IMAGE)])
    viewer.add_image(np.zeros((8, 8)), name="mine")
    viewer.layers.move(1, 0)  # the user puts channel 3 under channel 1
    names = _arrive(plans, sink, [(1, "raw", 2, LayerKind.IMAGE)])
    assert names.index("Step_01_raw_Channel_3") < names.index("Step_01_raw_Channel_1")  # kept
    assert "mine" in names and names.index("Step_01_raw_Channel_2") < names.index("mine")


def test_the_first_view_is_the_newest_step_as_a_composite_with_outlined_labels() -> None:
    viewer = ViewerModel()
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    _arrive(plans, sink, [(1, "raw", "DAPI", LayerKind.IMAGE), (1, "raw", "GFP", LayerKind.IMAGE)])
    raw = [viewer.layers["Step_01_raw_Channel_DAPI"], viewer.layers["Step_01_raw_Channel_GFP"]]
    assert all(layer.visible and layer.blending == "additive" for layer in raw)
    _arrive(plans, sink, [(3, "mask", "DAPI", LayerKind.LABELS)])  # only labels: over raw
    assert all(layer.visible for layer in raw)
    seg = [(2, "seg", "DAPI", LayerKind.IMAGE), (2, "seg", "DAPI", LayerKind.LABELS)]
    _arrive(plans, sink, seg)
    assert not any(layer.visible for layer in raw)  # the newest image step is the one shown
    mask = viewer.layers["Step_03_mask_Channel_DAPI_Labels"]
    assert mask.visible and mask.contour == LABELS_CONTOUR  # outlines over the image
    assert not viewer.layers["Step_02_seg_Channel_DAPI_Labels"].visible  # older labels
    raw[0].visible = True  # the user looks at a hidden step again: it stays shown
    _arrive(plans, sink, [(1, "raw", "RFP", LayerKind.IMAGE), (2, "seg", "GFP", LayerKind.IMAGE)])
    assert raw[0].visible
    assert not viewer.layers["Step_01_raw_Channel_RFP"].visible  # an older step's: hidden
    assert viewer.layers["Step_02_seg_Channel_GFP"].visible


def test_clear_removes_only_streamed_layers() -> None:
    viewer = ViewerModel()
    mine = viewer.add_image(np.zeros((4, 4)), name="mine")
    plans = Plans()
    sink = NapariApplier(viewer, plans)
    plans.add(config(), [frame("A01", 1), frame("A02", 2, channel=2)])
    sink.flush()
    assert len(viewer.layers) == 3
    sink.clear()
    assert list(viewer.layers) == [mine]
    assert not plans.store.layers
    plans.add(config(), [frame("A01", 1)])  # a fresh start after clear
    sink.flush()
    assert len(viewer.layers) == 2


def test_many_new_layers_are_created_a_few_per_flush_with_their_latest_data() -> None:
    """256 layers in one message blocked a viewer's GUI (and SIGTERM) for minutes: at most
    MAX_CREATE_PER_FLUSH are created per flush; the rest follow, with what they hold then."""
    from platestream.viewer.layer_model._napari_apply import MAX_CREATE_PER_FLUSH

    model = ViewerModel()
    plans = Plans()
    applier = NapariApplier(model, plans)
    channels = 3 * MAX_CREATE_PER_FLUSH + 1
    plans.add(config(channel_mode="slice"), [frame("A01", c, channel=c) for c in range(channels)])
    created = len(applier.flush().created)
    assert created == MAX_CREATE_PER_FLUSH and applier.pending == channels - created
    # A waiting layer gets new data before it exists: it is created with that data.
    plans.add(config(channel_mode="slice"), [frame("A01", 500, channel=channels - 1)])
    flushes = 1
    while applier.pending:
        applier.flush()
        flushes += 1
    assert flushes == 4 and len(model.layers) == channels
    last = model.layers[f"Step_00_raw_Channel_{channels - 1}"]
    assert int(np.max(last.data)) == 500
