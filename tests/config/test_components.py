from __future__ import annotations

import pytest

from platestream.config import DEFAULT_REGISTRY, ConfigError, DimensionMode, natural_key
from platestream.config._components import Component, normalize_well, well_key


def test_registry_order_is_the_documented_order() -> None:
    assert DEFAULT_REGISTRY.names == ("step", "well", "channel", "site", "timepoint", "z_index")


def test_default_modes_follow_the_reference_with_step_sliced() -> None:
    modes = {c.name: c.default_mode for c in DEFAULT_REGISTRY}
    assert modes["channel"] is DimensionMode.SLICE
    assert modes["step"] is DimensionMode.SLICE  # one layer per step, as the reference shows
    assert {modes[n] for n in ("well", "site", "timepoint", "z_index")} == {DimensionMode.STACK}


@pytest.mark.parametrize(
    ("name", "value", "segment"),
    [
        ("well", "a1", "Well_A01"),
        ("well", "B012", "Well_B12"),
        ("well", ("AF", 48), "Well_AF48"),
        ("site", 1, "Site_001"),
        ("channel", "DAPI", "Channel_DAPI"),
        ("channel", 2, "Channel_2"),
        ("z_index", 12, "Z_012"),
        ("timepoint", 3, "Timepoint_003"),
        ("step", (2, "gaussian_blur"), "Step_02_gaussian_blur"),
    ],
)
def test_segments_print_values_as_users_read_them(name: str, value: object, segment: str) -> None:
    assert DEFAULT_REGISTRY.get(name).segment(value) == segment


def test_wells_sort_by_row_then_column_and_names_naturally() -> None:
    wells = ["A10", "B1", "A2", "AA1", "A1"]
    assert sorted(wells, key=well_key) == ["A1", "A2", "A10", "B1", "AA1"]
    assert sorted(["z10", "z9", "z1"], key=natural_key) == ["z1", "z9", "z10"]
    assert sorted([10, 2, 1], key=natural_key) == [1, 2, 10]


def test_bad_well_is_rejected_with_what_was_expected() -> None:
    with pytest.raises(ConfigError, match="expected a row letter"):
        normalize_well("12")


def test_extending_keeps_the_original_and_refuses_duplicates() -> None:
    plate = Component("plate", "Plate", DimensionMode.SLICE)
    bigger = DEFAULT_REGISTRY.extended(plate)
    assert bigger.names[-1] == "plate"
    assert "plate" not in DEFAULT_REGISTRY
    with pytest.raises(ConfigError, match="duplicate"):
        bigger.extended(plate)
    with pytest.raises(ConfigError, match="unknown component 'plat'"):
        bigger.get("plat")
