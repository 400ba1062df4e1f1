from __future__ import annotations

from enum import Enum

from napari.utils.colormaps import AVAILABLE_COLORMAPS

from platestream.config import NapariColormap
from platestream.config._enums import colormap_members, make_colormap_enum, member_name


def test_one_member_per_napari_colormap_with_napari_names_as_values() -> None:
    assert {m.value for m in NapariColormap} == set(AVAILABLE_COLORMAPS)
    assert all(m.name.isidentifier() and m.name.isupper() for m in NapariColormap)


def test_members_are_in_a_deterministic_order() -> None:
    names = list(AVAILABLE_COLORMAPS)
    shuffled = list(reversed(names))
    assert [m.value for m in NapariColormap] == [v for _, v in colormap_members(shuffled)]


def test_awkward_names_become_valid_distinct_identifiers() -> None:
    assert member_name("bop blue") == "BOP_BLUE"
    assert member_name("I Forest") == "I_FOREST"
    assert member_name("3d-heat") == "CMAP_3D_HEAT"
    members = dict(colormap_members(["a b", "a-b", "A_B"]))
    assert len(members) == 3
    cmap: type[Enum] = make_colormap_enum(["a b", "a-b"])
    assert {m.value for m in cmap} == {"a b", "a-b"}
