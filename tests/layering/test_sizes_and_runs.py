"""variable_size_handling and replace_layers: both do what they say, in one go or streamed."""

from __future__ import annotations

from layering_helpers import config, image, of_type, writes
from layering_replay import Replay

from platestream.config import default_display
from platestream.layering import (
    ClearLayer,
    CopyPlane,
    CreateLayer,
    LayerKind,
    RemoveLayer,
    ResizePlane,
    SetDtype,
    filled_planes,
    layer_plans,
    locate,
    plan,
    plane_padding,
    update,
)

BIG, SMALL = (16, 16), (8, 12)


def test_separate_layers_splits_by_well_when_wells_differ_in_size() -> None:
    items = [image(well="A01", channel="DAPI", site=s, shape=BIG) for s in (1, 2)]
    items += [image(well="A02", channel="DAPI", site=s, shape=SMALL) for s in (1, 2)]
    rows = layer_plans(plan(items, default_display()).state)
    assert [(r.name, r.axis_labels, r.plane_shape, r.filled) for r in rows] == [
        ("Step_01_blur_Well_A01_Channel_DAPI", ("Site",), BIG, 2),
        ("Step_01_blur_Well_A02_Channel_DAPI", ("Site",), SMALL, 2),
    ]


def test_separate_layers_then_splits_a_mixed_well_by_shape() -> None:
    items = [
        image(well="A01", channel="DAPI", site=1, shape=BIG),
        image(well="A01", channel="DAPI", site=2, shape=SMALL),
        image(well="A02", channel="DAPI", site=1, shape=SMALL),
    ]
    rows = layer_plans(plan(items, default_display()).state)
    assert [(r.name, r.plane_shape, r.filled) for r in rows] == [
        ("Step_01_blur_Well_A01_Channel_DAPI_Shape_8x12", SMALL, 1),
        ("Step_01_blur_Well_A01_Channel_DAPI_Shape_16x16", BIG, 1),
        ("Step_01_blur_Well_A02_Channel_DAPI", SMALL, 1),
    ]
    assert all(r.axis_labels == ("Site",) for r in rows)  # the sites stay aligned


def test_separate_layers_without_a_well_axis_splits_by_shape() -> None:
    cfg = config(well_mode="slice")
    items = [
        image(well="A01", channel="DAPI", site=s, shape=(BIG, SMALL)[s % 2]) for s in (1, 2, 3)
    ]
    rows = layer_plans(plan(items, cfg).state)
    assert [(r.name, r.filled) for r in rows] == [
        ("Step_01_blur_Well_A01_Channel_DAPI_Shape_8x12", 2),
        ("Step_01_blur_Well_A01_Channel_DAPI_Shape_16x16", 1),
    ]


def test_a_streamed_split_moves_planes_and_matches_planning_at_once() -> None:
    first = [
        image(well=w, channel="DAPI", site=s, shape=BIG) for w in ("A01", "B01") for s in (1, 2)
    ]
    odd = image(well="A02", channel="DAPI", site=1, shape=SMALL)
    step1 = plan(first, default_display())
    step2 = update(step1.state, [odd])
    assert [op.layer for op in of_type(step2.ops, RemoveLayer)] == ["Step_01_blur_Channel_DAPI"]
    assert len(of_type(step2.ops, CopyPlane)) == 4  # every live plane moves to its well's layer
    assert step2.state == plan([*first, odd], default_display()).state
    streamed = Replay().apply(step1.ops).apply(step2.ops)
    at_once = Replay().apply(plan([odd, *first], default_display()).ops)
    assert streamed.snapshot() == at_once.snapshot()


def test_pad_to_max_keeps_one_layer_and_records_the_padding() -> None:
    cfg = config(variable_size_handling="pad_to_max")
    big = image(well="A01", channel="DAPI", site=1, shape=BIG)
    small = image(well="A02", channel="DAPI", site=1, shape=SMALL)
    result = plan([small, big], cfg)
    (row,) = layer_plans(result.state)
    assert row.plane_shape == (16, 16) and row.filled == 2
    assert plane_padding(result.state, row.name) == {(1, 0): (8, 4)}
    assert {w.item.extra["id"]: w.pad for w in writes(result.ops)} == {
        small.extra["id"]: (8, 4),
        big.extra["id"]: (0, 0),
    }
    assert locate(result.state, small).pad == (8, 4)


def test_pad_to_max_grows_planes_when_a_larger_image_arrives() -> None:
    cfg = config(variable_size_handling="pad_to_max")
    small = image(well="A01", channel="DAPI", shape=(8, 12))
    wide = image(well="A02", channel="DAPI", shape=(4, 20), dtype="float32")
    first = plan([small], cfg)
    second = update(first.state, [wide])
    assert [op.plane_shape for op in of_type(second.ops, ResizePlane)] == [(8, 20)]
    assert [op.dtype for op in of_type(second.ops, SetDtype)] == ["float32"]
    replay = Replay().apply(first.ops).apply(second.ops)
    layer = "Step_01_blur_Channel_DAPI"
    assert replay.shown(layer, (0,)) == small.extra["id"]
    assert replay.layers[layer].data.shape == (2, 8, 20)


def test_pad_to_max_cannot_pad_across_dimensionality_so_it_splits() -> None:
    cfg = config(variable_size_handling="pad_to_max")
    items = [image(well="A01", shape=(8, 8)), image(well="A02", shape=(3, 8, 8))]
    rows = layer_plans(plan(items, cfg).state)
    assert [(r.name, r.plane_shape) for r in rows] == [
        ("Step_01_blur_Well_A01", (8, 8)),
        ("Step_01_blur_Well_A02", (3, 8, 8)),
    ]


def test_without_replace_runs_accumulate_and_the_newest_run_wins_a_plane() -> None:
    run1 = [image(well=w, channel="DAPI") for w in ("A01", "A02")]
    run2 = [image(well="A02", channel="DAPI"), image(well="A03", channel="DAPI")]
    straggler = image(well="A01", channel="DAPI")  # run 1, arriving after run 2
    state = plan(run1, default_display(), run=1).state
    second = update(state, run2, run=2)
    late = update(second.state, [straggler], run=1)
    assert not of_type(second.ops, ClearLayer)
    assert late.superseded == () and len(writes(late.ops)) == 1  # A01 holds only run 1
    stale = update(late.state, [image(well="A02", channel="DAPI")], run=1)
    assert stale.superseded and not writes(stale.ops)  # A02 is run 2's
    runs = {
        i: slot[0] for i, slot in filled_planes(late.state, "Step_01_blur_Channel_DAPI").items()
    }
    assert runs == {(0,): 1, (1,): 2, (2,): 2}


def test_with_replace_a_new_run_clears_the_groups_it_reaches() -> None:
    cfg = config(replace_layers=True)
    run1 = [image(well=w, channel=c) for w in ("A01", "A02") for c in ("DAPI", "GFP")]
    run2 = [image(well="A02", channel="DAPI")]
    first = plan(run1, cfg, run=1)
    second = update(first.state, run2, run=2)
    assert [op.layer for op in of_type(second.ops, ClearLayer)] == ["Step_01_blur_Channel_DAPI"]
    rows = {r.name: r.filled for r in layer_plans(second.state)}
    assert rows == {"Step_01_blur_Channel_DAPI": 1, "Step_01_blur_Channel_GFP": 2}
    straggler = update(second.state, [image(well="A01", channel="DAPI")], run=1)
    assert len(straggler.superseded) == 1 and not straggler.ops
    replay = Replay().apply(first.ops).apply(second.ops)
    assert replay.shown("Step_01_blur_Channel_DAPI", (0,)) == 0  # run 1's A01 is gone
    assert replay.shown("Step_01_blur_Channel_DAPI", (1,)) == run2[0].extra["id"]
    assert not of_type(second.ops, CreateLayer)  # the layer is reused, not recreated


def test_replace_keeps_the_structure_of_earlier_runs() -> None:
    cfg = config(replace_layers=True)
    first = plan([image(well="A01", shape=BIG), image(well="A02", shape=SMALL)], cfg, run=1)
    second = update(first.state, [image(well="A01", shape=BIG)], run=2)
    assert not of_type(second.ops, RemoveLayer)  # a split, once made, stays
    assert [r.filled for r in layer_plans(second.state)] == [1, 0]


def test_labels_follow_the_split_of_their_images() -> None:
    items = [
        image(well="A01", shape=BIG),
        image(well="A02", shape=SMALL),
        image(well="A02", shape=SMALL, kind=LayerKind.LABELS, dtype="uint32"),
        image(well="A01", shape=(4, 2), kind=LayerKind.POINTS),
    ]
    names = [r.name for r in layer_plans(plan(items, default_display()).state)]
    assert names == [
        "Step_01_blur_Well_A01",
        "Step_01_blur_Well_A01_Points",
        "Step_01_blur_Well_A02",
        "Step_01_blur_Well_A02_Labels",
    ]


def test_an_image_without_a_well_in_a_group_split_by_well_gets_its_own_layer() -> None:
    first = plan([image(well="A01", site=1, shape=BIG)], default_display())
    no_well = image(site=1, shape=SMALL)  # e.g. a plate-level overview in the same step
    second = update(first.state, [no_well])
    names = [r.name for r in layer_plans(second.state)]
    assert names[0].startswith("Step_01_blur_Well_none_Uid_")  # absent sorts first
    assert names[1] == "Step_01_blur_Well_A01"
    assert "Step_01_blur" in [op.layer for op in of_type(second.ops, RemoveLayer)]
    replay = Replay().apply(first.ops).apply(second.ops)
    assert replay.shown(names[0], (0,)) == no_well.extra["id"]
