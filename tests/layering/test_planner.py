"""The planning rules, one at a time, each checked through the operations a viewer applies."""

from __future__ import annotations

import pytest
from layering_helpers import config, image, of_type, writes
from layering_replay import Replay

from platestream.config import default_display
from platestream.layering import (
    AddAxis,
    CreateLayer,
    InsertIndex,
    LayerKind,
    PlanError,
    PlanState,
    SetAxisLabels,
    declare,
    layer_plans,
    locate,
    missing_planes,
    plan,
    update,
)


def names(state: PlanState) -> list[str]:
    return [row.name for row in layer_plans(state)]


def test_the_reference_name_when_well_channel_and_site_are_sliced() -> None:
    cfg = config(well_mode="slice", site_mode="slice")
    item = image(step=(2, "gaussian_blur"), well="A01", channel="DAPI", site=1)
    assert names(plan([item], cfg).state) == [
        "Step_02_gaussian_blur_Well_A01_Channel_DAPI_Site_001"
    ]


def test_default_layout_one_layer_per_step_and_channel_with_well_and_site_axes() -> None:
    items = [
        image(step=s, well=w, channel=c, site=i)
        for s in [(1, "blur"), (2, "threshold")]
        for w in ["A01", "B03"]
        for c in ["DAPI", "GFP"]
        for i in [1, 2, 3]
    ]
    result = plan(items, default_display())
    rows = layer_plans(result.state)
    assert [r.name for r in rows] == [
        "Step_01_blur_Channel_DAPI",
        "Step_01_blur_Channel_GFP",
        "Step_02_threshold_Channel_DAPI",
        "Step_02_threshold_Channel_GFP",
    ]
    for row in rows:
        assert row.axis_labels == ("Well", "Site")
        assert row.shape == (2, 3, 8, 8)
        assert row.filled == 6 and row.planes == 6
        assert [a.value_labels for a in row.axes] == [("A01", "B03"), ("001", "002", "003")]


def test_axis_values_sort_naturally_and_equal_values_merge() -> None:
    items = [
        image(well=w, channel="DAPI", site=s) for w, s in [("A10", 10), ("a2", 2), ("A02", "2")]
    ]
    row = layer_plans(plan(items, default_display()).state)[0]
    assert row.axes[0].values == ("A02", "A10")  # 'a2' and 'A02' are one well
    assert row.axes[1].values == (2, 10)  # 2 < 10, and "2" is site 2
    assert row.filled == 2


def test_write_indices_follow_the_sorted_axes() -> None:
    a10, a2 = image(well="A10", channel="DAPI", site=1), image(well="A2", channel="DAPI", site=1)
    result = plan([a10, a2], default_display())
    assert {w.item.extra["id"]: w.index for w in writes(result.ops)} == {
        a10.extra["id"]: (1, 0),
        a2.extra["id"]: (0, 0),
    }
    assert locate(result.state, a10).index == (1, 0)


def test_a_value_arriving_between_two_known_ones_is_inserted_and_shifts_later_planes() -> None:
    first = plan([image(well=w, channel="DAPI", site=1) for w in ["A01", "A10"]], default_display())
    late = image(well="A05", channel="DAPI", site=1)
    result = update(first.state, [late])
    inserts = of_type(result.ops, InsertIndex)
    assert [(op.axis, op.index, op.value) for op in inserts] == [(0, 1, "A05")]
    assert writes(result.ops)[0].index == (1, 0)
    relabel = of_type(result.ops, SetAxisLabels)
    assert relabel[0].axes[0].value_labels == ("A01", "A05", "A10")
    replay = Replay().apply(first.ops).apply(result.ops)
    layer = "Step_01_blur_Channel_DAPI"
    shown = [replay.shown(layer, (i, 0)) for i in range(3)]
    assert shown[1] == late.extra["id"] and 0 not in shown


def test_missing_planes_are_the_unfilled_indices() -> None:
    items = [image(well=w, channel="DAPI", site=s) for w in ["A01", "A02"] for s in [1, 2]]
    state = plan(items[:3], default_display()).state
    assert missing_planes(state, "Step_01_blur_Channel_DAPI") == ((1, 1),)
    assert missing_planes(update(state, items[3:]).state, "Step_01_blur_Channel_DAPI") == ()


def test_configured_and_per_channel_colormaps() -> None:
    cfg = config(colormap="viridis", channel_colormaps={"DAPI": "blue", "2": "green"})
    items = [
        image(well="A01", channel="DAPI"),
        image(well="A01", channel="Cy5"),
        image(well="A01", channel=2),
        image(well="A01", channel="DAPI", kind=LayerKind.LABELS),
    ]
    created = {op.name: op.colormap for op in of_type(plan(items, cfg).ops, CreateLayer)}
    assert created == {
        "Step_01_blur_Channel_DAPI": "blue",
        "Step_01_blur_Channel_Cy5": "viridis",
        "Step_01_blur_Channel_2": "green",
        "Step_01_blur_Channel_DAPI_Labels": None,
    }


def test_channel_stacked_uses_the_configured_colormap() -> None:
    cfg = config(channel_mode="stack", channel_colormaps={"DAPI": "blue"}, colormap="magma")
    result = plan([image(well="A01", channel="DAPI"), image(well="A01", channel="GFP")], cfg)
    (created,) = of_type(result.ops, CreateLayer)
    assert created.name == "Step_01_blur" and created.colormap == "magma"
    assert created.axis_labels == ("Well", "Channel")


def test_labels_points_and_shapes_share_the_image_layers_axes() -> None:
    wells, sites = ["A01", "A02", "B01"], [1, 2]
    items = [image(well=w, channel="DAPI", site=s) for w in wells for s in sites]
    items += [image(well="B01", channel="DAPI", site=2, kind=LayerKind.LABELS)]
    items += [image(well="A02", channel="DAPI", site=1, kind=LayerKind.POINTS, shape=(5, 2))]
    items += [image(well="A01", channel="DAPI", site=2, kind=LayerKind.SHAPES, shape=(3, 4, 2))]
    result = plan(items, default_display())
    created = {op.kind: op for op in of_type(result.ops, CreateLayer)}
    image_axes = created[LayerKind.IMAGE].axes
    for kind in (LayerKind.LABELS, LayerKind.POINTS, LayerKind.SHAPES):
        assert created[kind].axes == image_axes  # same sliders, same values, same order
    assert created[LayerKind.POINTS].plane_shape is None
    replay = Replay().apply(result.ops)
    points = replay.layers["Step_01_blur_Channel_DAPI_Points"]
    assert points.points == {(1, 0): items[-2].extra["id"]}


def test_a_component_some_items_lack_becomes_an_axis_with_an_absent_value() -> None:
    flat = image(well="A01", channel="DAPI")
    first = plan([flat], default_display())
    deep = [image(well="A01", channel="DAPI", z_index=z) for z in (0, 1)]
    result = update(first.state, deep)
    (add,) = of_type(result.ops, AddAxis)
    assert (add.component, add.axis, add.size, add.existing_index) == ("z_index", 1, 3, 0)
    (row,) = layer_plans(result.state)
    assert row.axis_labels == ("Well", "Z")
    assert row.axes[1].value_labels == ("none", "000", "001")
    replay = Replay().apply(first.ops).apply(result.ops)
    layer = "Step_01_blur_Channel_DAPI"
    assert [replay.shown(layer, (0, z)) for z in range(3)] == [
        flat.extra["id"],
        deep[0].extra["id"],
        deep[1].extra["id"],
    ]
    assert replay.layers[layer].labels == ("Well", "Z")


def test_stacking_the_step_puts_steps_on_an_axis() -> None:
    cfg = config(step_mode="stack")
    items = [image(step=s, well="A01", channel="DAPI") for s in [(2, "b"), (10, "a"), (1, "c")]]
    (created,) = of_type(plan(items, cfg).ops, CreateLayer)
    assert created.name == "Channel_DAPI"
    assert created.axis_labels == ("Step", "Well")
    assert created.axes[0].value_labels == ("01_c", "02_b", "10_a")


def test_everything_stacked_still_names_the_layer() -> None:
    modes = {
        f"{c}_mode": "stack" for c in ["step", "well", "channel", "site", "timepoint", "z_index"]
    }
    assert names(plan([image(well="A01", channel="DAPI")], config(**modes)).state) == ["Plate"]


@pytest.mark.parametrize(
    "components",
    [{"well": "A01", "site": 1.5}, {"well": "A01", "site": [1]}, {"well": "A01", "site": None}],
)
def test_bad_component_values_are_refused_or_treated_as_absent(components: dict) -> None:
    item = image(**components)
    if components["site"] is None:  # absent: simply no site
        assert layer_plans(plan([item], default_display()).state)[0].axis_labels == ("Well",)
    else:
        with pytest.raises(PlanError, match=r"site value|unhashable"):
            plan([item], default_display())


def test_a_bad_item_leaves_no_partial_plan() -> None:
    state = plan([image(well="A01")], default_display()).state
    with pytest.raises(PlanError, match="not a numpy dtype"):
        update(state, [image(well="A02"), image(well="A03", dtype="pixels")])
    assert layer_plans(state)[0].filled == 1  # the old state is untouched


def test_a_declared_layout_makes_layers_at_their_final_size_and_images_only_fill() -> None:
    cfg = config()
    layout = {"well": ["a1", "A02", "B01"], "site": [1, 2, 3], "channel": ["DAPI", "GFP"]}
    declared = declare(PlanState.empty(cfg), layout)
    assert declared.ops == ()  # no layer yet: nothing to tell a viewer
    items = [
        image(well=w, channel=c, site=s)
        for w in ("B01", "A02", "A01")
        for s in (3, 1, 2)
        for c in ("GFP", "DAPI")
    ]
    state, ops = declared.state, []
    for item in items:  # streamed one image at a time, in no particular order
        result = update(state, [item])
        state, ops = result.state, ops + list(result.ops)
    created = of_type(ops, CreateLayer)
    assert [tuple(a.size for a in op.axes) for op in created] == [(3, 3), (3, 3)]
    assert not of_type(ops, InsertIndex) and not of_type(ops, SetAxisLabels)
    assert len(writes(ops)) == len(items)
    # the same layers, axes and planes as planning the whole plate without a layout
    at_once = plan(items, cfg).state
    assert layer_plans(state) == layer_plans(at_once)
    for row in layer_plans(state):
        assert missing_planes(state, row.name) == missing_planes(at_once, row.name) == ()


def test_declaring_values_grows_existing_layers_and_known_values_change_nothing() -> None:
    cfg = config()
    state = plan([image(well="A02", channel="DAPI", site=1)], cfg).state
    grown = declare(state, {"well": ["A01", "A02"], "site": ["001", "2"], "step": [(1, "x")]})
    inserts = of_type(grown.ops, InsertIndex)
    assert [(op.axis, op.index) for op in inserts] == [(0, 0), (1, 1)]  # A01 before A02
    assert of_type(grown.ops, SetAxisLabels)
    again = declare(grown.state, {"well": ["a2", "A01"], "plate_row": [1]})
    assert again.ops == ()
    with pytest.raises(PlanError, match=r"declared layout: site value 1\.5"):
        declare(grown.state, {"site": [1.5]})
