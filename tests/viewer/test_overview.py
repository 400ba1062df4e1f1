"""The plate overview's model: plate geometry, site grids, tiles filled as planes arrive,
where a click lands, and the bound on its memory (napari-free)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from platestream.config import ConfigError, NapariStreamingConfig, resolve_current
from platestream.layering import ImageItem, LayerKind
from platestream.viewer.layer_model import (
    Overviews,
    PlateOverview,
    check_site_layout,
    plate_format,
    shrink,
    site_grid,
)
from platestream.viewer.layer_model._overview import ARRIVED, FAILED, NOT_YET

Array = np.ndarray[Any, Any]


def item(well: str, site: int = 1, channel: str = "DAPI", step: int = 1) -> ImageItem:
    components = {"well": well, "site": site, "channel": channel}
    return ImageItem(components, step, "blur", (64, 64), "uint16")


def flat(value: int, side: int = 64) -> Array:
    return np.full((side, side), value, np.uint16)


def cell_of(plate: PlateOverview, well: str, site_index: int, channel: Any = "DAPI") -> Array:
    from platestream.store import well_position

    layout = plate.geometry
    assert layout is not None
    position = well_position(well)
    assert position is not None
    y, x = layout.cell_origin(position, site_index)
    return plate.channels[channel][y : y + layout.cell, x : x + layout.cell]


def test_plate_formats_are_the_smallest_standard_plate_that_holds_the_wells() -> None:
    assert plate_format(1, 1) == (2, 3)
    assert plate_format(2, 3) == (2, 3)
    assert plate_format(8, 12) == (8, 12)
    assert plate_format(8, 13) == (16, 24)
    assert plate_format(32, 48) == (32, 48)
    assert plate_format(40, 10) == (40, 10)  # no standard plate: exactly what is needed


def test_sites_make_a_near_square_grid_or_the_one_asked_for() -> None:
    assert site_grid(1) == (1, 1)
    assert site_grid(4) == (2, 2)
    assert site_grid(6) == (2, 3)
    assert site_grid(9) == (3, 3)
    assert site_grid(10) == (3, 4)
    assert site_grid(4, "1x4") == (1, 4)
    assert site_grid(12, "3x3") == (4, 3)  # too small: more rows
    assert check_site_layout(" 2x5 ") == "2x5"
    with pytest.raises(ValueError, match="'diagonal': expected 'auto' or rows x columns"):
        check_site_layout("diagonal")


def test_the_site_layout_setting_is_checked_by_name() -> None:
    assert resolve_current(NapariStreamingConfig()).value.overview_site_layout == "auto"
    with pytest.raises(ConfigError, match=r"overview_site_layout.*expected 'auto' or rows x"):
        NapariStreamingConfig(overview_site_layout="3 by 3")
    with pytest.raises(ConfigError, match="overview_tile_px"):
        NapariStreamingConfig(overview_tile_px=4)


def test_shrinking_keeps_the_mean_and_the_layout_of_a_plane() -> None:
    plane = np.zeros((1024, 1024), np.uint16)
    plane[:, 512:] = 1000
    small = shrink(plane, 8, 8)
    assert small.shape == (8, 8)
    assert np.all(small[:, :4] == 0) and np.all(small[:, 4:] == 1000)
    noisy = np.random.default_rng(1).poisson(300, (2160, 2160)).astype(np.uint16)
    assert abs(float(shrink(noisy, 21, 21).mean()) - 300) < 3
    tiny = np.arange(4, dtype=np.uint16).reshape(2, 2)  # smaller than its cell
    assert shrink(tiny, 4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    stack = np.stack([flat(1), flat(7), flat(3)])
    assert float(shrink(stack, 4, 4).mean()) == 7  # a volume: its middle plane


def test_a_2x3_plate_fills_in_tile_by_tile_at_plate_positions() -> None:
    plate = PlateOverview("01_blur", tile=48)
    wells = ["A01", "A02", "A03", "B01", "B02", "B03"]
    for number, well in enumerate(wells[:4]):
        assert plate.add(item(well), flat(100 * (number + 1)))
    layout = plate.geometry
    assert layout is not None and (layout.rows, layout.columns) == (2, 3)
    for number, well in enumerate(wells[:4]):
        assert np.all(cell_of(plate, well, 0) == 100 * (number + 1))
    # the slots: arrived wells, wells not yet arrived, a failed one
    from platestream.store import well_position

    def state(well: str) -> int:
        position = well_position(well)
        assert position is not None
        return plate.state(position)

    assert [state(w) for w in wells] == [ARRIVED] * 4 + [NOT_YET] * 2
    assert plate.mark_failed("B03") and state("B03") == FAILED
    dirty, _ = plate.take_changes()
    assert {p.name for p in dirty} >= {"A01", "A02", "A03", "B01", "B03"}
    assert plate.take_changes() == (set(), False)


def test_a_click_position_names_its_well_and_site() -> None:
    plate = PlateOverview("01_blur", tile=64)
    plate.declare(["A01", "B03"], [1, 2, 3, 4])
    layout = plate.geometry
    assert layout is not None and layout.grid == (2, 2)
    from platestream.store import well_position

    position = well_position("B03")
    assert position is not None
    y, x = layout.cell_origin(position, 3)  # the fourth site: bottom right of the tile
    assert plate.locate(y + 1, x + 1) == ("B03", 4)
    wy, wx = layout.well_origin(position)
    assert plate.locate(wy, wx)[0] == "B03"  # type: ignore[index]
    assert plate.locate(0.5, 0.5) is None  # the gap around the plate
    assert plate.locate(-5, 10) is None and plate.locate(10_000, 10) is None
    rows, columns = plate.labels()
    assert [text for _, _, text in rows] == ["A", "B"]
    assert [text for _, _, text in columns] == ["1", "2", "3"]


def test_new_sites_and_wells_regrow_the_plate_and_keep_what_is_drawn() -> None:
    plate = PlateOverview("01_blur", tile=64)
    plate.add(item("A01", 1), flat(500))
    plate.add(item("A02", 1), flat(600))
    first = plate.geometry
    assert first is not None and first.grid == (1, 1)
    plate.add(item("A01", 2), flat(700))  # a second site: a 1 x 2 grid, smaller cells
    second = plate.geometry
    assert second is not None and second.grid == (1, 2) and second.cell < first.cell
    assert np.all(cell_of(plate, "A01", 0) == 500) and np.all(cell_of(plate, "A02", 0) == 600)
    assert np.all(cell_of(plate, "A01", 1) == 700)
    plate.add(item("H12", 1), flat(800))  # a 96-well plate after all
    third = plate.geometry
    assert third is not None and (third.rows, third.columns) == (8, 12)
    assert np.all(cell_of(plate, "A02", 0) == 600) and np.all(cell_of(plate, "H12", 0) == 800)
    assert plate.take_changes()[1]  # reshaped: napari gets the new canvases


def test_labels_points_and_wells_without_a_plate_position_are_not_drawn() -> None:
    overviews = Overviews(tile=32)
    labels = ImageItem({"well": "A01"}, 1, "seg", (64, 64), "uint32", kind=LayerKind.LABELS)
    assert not overviews.add(labels, flat(3).astype(np.uint32))
    assert not overviews.add(ImageItem({"channel": "DAPI"}, 1, "raw", (8, 8), "uint16"), flat(1))
    assert not overviews.add(item("not a well"), flat(1))
    assert overviews.plates == {}


def test_each_step_has_its_plate_and_channels_keep_their_colormaps() -> None:
    overviews = Overviews(tile=32)
    overviews.add(item("A01", channel="DAPI"), flat(10), "blue")
    overviews.add(item("A01", channel="GFP"), flat(20), "green")
    overviews.add(item("A01", channel="DAPI", step=2), flat(30), "blue")
    assert sorted(overviews.plates) == [(1, "blur"), (2, "blur")]
    assert overviews.plates[(1, "blur")].channels.keys() == {"DAPI", "GFP"}
    assert overviews.colormaps[((1, "blur"), "GFP")] == "green"
    assert overviews.plates[(1, "blur")].contrast["GFP"] == (20.0, 21.0)  # a flat first well


def test_contrast_spans_the_first_wells_of_a_channel_then_stays() -> None:
    from platestream.store import well_position

    plate = PlateOverview("01_blur", tile=32)
    wells = [f"A{c:02d}" for c in range(1, 13)]
    for number, well in enumerate(wells):
        plane = np.full((64, 64), 100 * (number + 1), np.uint16)
        plane[:8, :] = 50  # a dim top band: tiles are not flat
        plate.add(item(well), plane)
        if number == 0:
            assert plate.contrast["DAPI"] == (50.0, 100.0)
    assert plate.contrast["DAPI"] == (50.0, 800.0)  # the first 8 wells, not the 12th
    plate.take_changes()
    plate.set_contrast("DAPI", (0, 100))  # the user's: every arrived tile is drawn again
    assert plate.take_changes()[0] == {well_position(w) for w in wells}
    plate.add(item("B01"), flat(5000))
    assert plate.contrast["DAPI"] == (0.0, 100.0)  # and it stays the user's


def test_a_declared_384_well_plate_is_sized_at_once_and_small_in_memory() -> None:
    wells = [f"{chr(65 + r)}{c:02d}" for r in range(16) for c in range(1, 25)]
    overviews = Overviews(tile=64)
    overviews.declare({"well": wells, "site": list(range(1, 10)), "channel": ["DAPI"]})
    for channel in ("DAPI", "GFP", "RFP", "Cy5"):
        overviews.add(item("A01", 1, channel), np.zeros((1024, 1024), np.uint16))
    plate = overviews.plates[(1, "blur")]
    layout = plate.geometry
    assert layout is not None and (layout.rows, layout.columns) == (16, 24)
    assert layout.grid == (3, 3)
    # its canvas and its share of the RGB picture napari shows (its labels' margin too)
    margin = max(12, layout.pitch // 2)
    picture = (layout.shape[0] + margin) * (layout.shape[1] + margin) * 3
    per_channel = plate.channels["DAPI"].nbytes + picture / 4
    assert per_channel <= 5e6, per_channel  # Squid's plate view holds ~5 MB per channel


def test_a_plate_larger_than_the_gpus_texture_gets_smaller_tiles() -> None:
    wells = [f"A{c:02d}" for c in range(1, 49)] + ["AF48"]  # a 1536-well plate
    overviews = Overviews(tile=96, max_side=2048)
    overviews.declare({"well": wells})
    overviews.add(item("AF48"), flat(5))
    layout = overviews.plates[(1, "blur")].geometry
    assert layout is not None and (layout.rows, layout.columns) == (32, 48)
    assert max(layout.shape) <= 2048 and layout.tile < 96


def test_composing_adds_the_channels_through_their_colormaps_over_the_slots() -> None:
    from platestream.viewer.layer_model import compose
    from platestream.viewer.layer_model._overview import SLOT_COLORS

    plate = PlateOverview("01_blur", tile=16)
    plate.add(item("A01", channel="DAPI"), flat(100))
    plate.add(item("A01", channel="GFP"), flat(300))
    plate.add(item("A02", channel="DAPI"), flat(200))
    plate.set_contrast("DAPI", (0, 200))
    plate.set_contrast("GFP", (0, 300))
    ramp = np.arange(256, dtype=np.uint8)
    luts = {
        "DAPI": np.stack([0 * ramp, 0 * ramp, ramp], axis=1),  # blue
        "GFP": np.stack([0 * ramp, ramp, 0 * ramp], axis=1),  # green
    }
    layout = plate.geometry
    assert layout is not None
    out = np.zeros((*layout.shape, 3), np.uint8)
    compose(plate, luts, out, plate.all_positions(layout))
    from platestream.store import well_position

    def middle(well: str) -> list[int]:
        position = well_position(well)
        assert position is not None
        y, x = layout.well_origin(position)
        return [int(v) for v in out[y + 8, x + 8]]

    base = SLOT_COLORS[2][0]
    assert middle("A01") == [base, 255, base + 127]  # half blue, full green (clipped)
    assert middle("A02") == [base, base, 255]  # full blue (clipped over its slot)
    assert middle("B01") == list(SLOT_COLORS[1])  # not yet: the empty slot's grey


def test_any_dtype_goes_into_a_channels_canvas_without_wrapping() -> None:
    plate = PlateOverview("01_blur", tile=16)
    plate.add(item("A01"), np.full((32, 32), 200, np.uint8))  # the canvas: uint8
    plate.add(item("A02"), np.full((32, 32), 1000, np.uint16))  # brighter than uint8 holds
    plate.add(item("A03"), np.full((32, 32), np.nan, np.float32))
    assert int(cell_of(plate, "A01", 0).max()) == 200
    assert int(cell_of(plate, "A02", 0).min()) == 255  # clipped, not wrapped to 232
    assert int(cell_of(plate, "A03", 0).max()) == 0


def test_failed_wells_are_marked_in_their_steps_overview_even_before_it_exists() -> None:
    from platestream.store import well_position

    overviews = Overviews(tile=16)
    overviews.add(item("A01", step=1), flat(5))  # step 1 is "blur"
    overviews.add(item("A02", step=1), flat(5))
    assert overviews.mark_failed("blur", ["A02"]) == 1
    assert overviews.mark_failed("segment", ["B01"]) == 0  # no overview of it yet
    segment = ImageItem({"well": "A01", "site": 1}, 2, "segment_watershed", (64, 64), "uint16")
    overviews.add(segment, flat(5))  # a function's stream of the step "segment"
    a02, b01 = well_position("A02"), well_position("B01")
    assert a02 is not None and b01 is not None
    assert overviews.plates[(1, "blur")].state(a02) == FAILED
    assert overviews.plates[(1, "blur")].state(b01) == NOT_YET  # failed in another step
    assert overviews.plates[(2, "segment_watershed")].state(b01) == FAILED
    assert overviews.mark_failed("", ["A01"]) == 2  # a worker that died: every step
