"""Showing part of a stream: the filter's syntax and what it lets through."""

from __future__ import annotations

import pytest

from platestream.layering import checked_show, describe_show, parse_show, shows


def test_show_specs_parse_into_a_filter_with_wells_in_their_usual_form() -> None:
    show = parse_show(["well=a1,A02", "channel=DAPI", "well=B3"])
    assert show == {"well": ("A01", "A02", "B03"), "channel": ("DAPI",)}
    assert describe_show(show) == "well=A01,A02,B03 channel=DAPI"
    assert describe_show({}) == "everything"


@pytest.mark.parametrize("spec", ["well", "=A01", "well=", "well=,"])
def test_a_malformed_show_spec_is_refused_by_name(spec: str) -> None:
    with pytest.raises(ValueError, match=f"--show '{spec}': expected component=value"):
        parse_show([spec])


def test_an_item_passes_when_every_filtered_component_has_a_shown_value() -> None:
    show = parse_show(["well=A01,A02", "site=2", "step=blur"])
    components = {"well": "A01", "site": 2, "channel": "GFP"}
    assert shows(show, components, 1, "blur")
    assert shows(show, {**components, "well": "a2"}, 1, "blur")  # A02 in another spelling
    assert not shows(show, {**components, "well": "B01"}, 1, "blur")
    assert not shows(show, {**components, "site": 3}, 1, "blur")
    assert not shows(show, components, 2, "threshold")
    assert shows(parse_show(["step=2"]), components, 2, "threshold")  # a step by index
    assert not shows(parse_show(["channel=DAPI"]), {"well": "A01"}, 0, "raw")  # no channel
    assert shows({}, components, 0, "raw")  # no filter: everything


def test_a_filter_given_as_a_mapping_is_checked() -> None:
    assert checked_show({"site": [1, 2], "well": ("b3",)}) == {
        "site": ("1", "2"),
        "well": ("B03",),
    }
    with pytest.raises(ValueError, match=r"show\['well'\]: expected a list of values"):
        checked_show({"well": "A01"})
