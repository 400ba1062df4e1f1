"""The Qt-free core: plan operations -> numpy arrays (against the reference replay)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platestream.backend import ReceivedImage
from platestream.backend.shm._lease import LeaseBook
from platestream.layering import ImageItem, LayerKind, PlanState, update
from platestream.viewer.layer_model._layer_store import estimate_contrast
from platestream.viewer.layer_model._plans import Plans
from platestream.viewer.layer_model._sources import MemoryPlanes
from platestream.viewer.layer_model._stack import EAGER_PLANES, LayerPlanes, LevelView
from tests.layering.layering_helpers import config, image
from tests.layering.layering_replay import Replay

STEPS = [(0, "raw"), (1, "blur")]
WELLS = ["A01", "A02", "B10", None]
CHANNELS = ["DAPI", 2]
SITES = [1, 2, None]
KINDS = [LayerKind.IMAGE, LayerKind.IMAGE, LayerKind.LABELS, LayerKind.POINTS]
SHAPES = [(6, 6), (4, 8)]


def pixels_for(item: ImageItem) -> np.ndarray[Any, Any]:
    """The replay's convention: every pixel is the item's id (points: one point, id, id)."""
    ident = int(item.extra["id"])
    if item.kind in (LayerKind.POINTS, LayerKind.SHAPES):
        return np.array([[ident, ident]], dtype=float)
    return np.full(item.shape, ident, dtype=item.dtype)


def received(items: list[ImageItem]) -> list[ReceivedImage]:
    return [ReceivedImage(item, pixels_for(item)) for item in items]


@st.composite
def plates(draw: st.DrawFn) -> list[ImageItem]:
    keys = st.tuples(
        st.sampled_from(STEPS),
        st.sampled_from(WELLS),
        st.sampled_from(CHANNELS),
        st.sampled_from(SITES),
        st.sampled_from(KINDS),
    )
    chosen = draw(st.lists(keys, min_size=1, max_size=30, unique=True))
    items = []
    for number, (step, well, channel, site, kind) in enumerate(chosen, start=1):
        shape = draw(st.sampled_from(SHAPES))
        dtype = draw(st.sampled_from(["uint8", "uint16"]))
        values = {"well": well, "channel": channel, "site": site}
        items.append(image(step, shape, dtype, kind, number, **values))
    return items


def assert_same_as_replay(plans: Plans, replay: Replay) -> None:
    assert set(plans.store.layers) == set(replay.layers)
    for name, reference in replay.layers.items():
        stored = plans.store.layers[name]
        if reference.data is not None:
            assert stored.array is not None
            shown = np.asarray(stored.array)
            np.testing.assert_array_equal(shown, reference.data)
            assert shown.dtype == reference.data.dtype
        else:
            shown = {index: int(payload[0, 0]) for index, payload in stored.planes.items()}
            assert shown == reference.points
            assert stored.sizes == list(reference.sizes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=plates(),
    cuts=st.lists(st.integers(0, 30), max_size=5),
    modes=st.fixed_dictionaries(
        {f"{c}_mode": st.sampled_from(["slice", "stack"]) for c in ("well", "channel", "site")}
    ),
    handling=st.sampled_from(["separate_layers", "pad_to_max"]),
)
def test_store_shows_what_the_reference_replay_shows(
    items: list[ImageItem], cuts: list[int], modes: dict[str, str], handling: str
) -> None:
    display = config(variable_size_handling=handling, **modes)
    plans, replay = Plans(), Replay()
    state = PlanState.empty(display)
    bounds = [0, *sorted(set(cuts)), len(items)]
    for start, stop in itertools.pairwise(bounds):
        batch = items[start:stop]
        if not batch:
            continue
        plans.add(display, received(batch))
        result = update(state, batch)
        replay.apply(result.ops)
        state = result.state
    assert_same_as_replay(plans, replay)


def test_layer_planes_insert_like_numpy_insert() -> None:
    rng = np.random.default_rng(1)
    planes = LayerPlanes((1, 2), (3, 3), np.uint16, MemoryPlanes())
    reference = np.zeros((1, 2, 3, 3), np.uint16)
    for step in range(40):
        axis = int(rng.integers(0, 2))
        index = int(rng.integers(0, reference.shape[axis] + 1))
        planes.insert(axis, index)
        reference = np.insert(reference, index, 0, axis=axis)
        value = step + 1
        where = tuple(int(rng.integers(0, n)) for n in reference.shape[:2])
        planes.set(where, planes.source.put(None, np.full((3, 3), value, np.uint16)))  # type: ignore[arg-type]
        reference[where] = value
        np.testing.assert_array_equal(np.asarray(planes), reference)


def test_growing_a_plate_well_by_well_copies_no_pixels() -> None:
    """A new well renumbers an axis; the planes already there are not touched."""
    source = MemoryPlanes()
    planes = LayerPlanes((0, 1), (4, 4), np.uint8, source)
    for well in range(1536):
        planes.insert(0, planes.sizes[0])
        planes.set((well, 0), source.put(None, np.full((4, 4), well % 251, np.uint8)))  # type: ignore[arg-type]
    assert source.bytes == 1536 * 16  # each plane once, nothing copied while growing
    for _ in range(3):  # a new site for every well: still no copy
        planes.insert(1, planes.sizes[1])
    view = planes.view()
    assert view.shape == (1536, 4, 4, 4)
    np.testing.assert_array_equal(view[:, 0, 0, 0], np.arange(1536) % 251)
    assert not np.asarray(view[:, 1:]).any()
    assert source.bytes == 1536 * 16


def test_a_view_reads_only_the_planes_asked_for() -> None:
    reads: list[int] = []

    class Counting(MemoryPlanes):
        def get(self, ref: Any, level: int = 0) -> Any:
            reads.append(int(ref))
            return super().get(ref, level)

    source = Counting()
    planes = LayerPlanes((600, 2), (8, 8), np.uint16, source)
    for well in range(600):
        planes.set((well, 1), source.put(None, np.full((8, 8), well, np.uint16)))  # type: ignore[arg-type]
    view = planes.view()
    assert int(view[17, 1, 0, 0]) == 17 and len(reads) == 1
    lazy = view[:, :, 2:4, 2:4]  # 1,200 planes: napari's multiscale path asks like this
    assert isinstance(lazy, LevelView) and lazy.shape == (600, 2, 2, 2) and len(reads) == 1
    np.testing.assert_array_equal(np.asarray(lazy[599, 1]), np.full((2, 2), 599))
    assert len(reads) == 2
    small = view[3:5, 1]  # few planes: read at once
    assert isinstance(small, np.ndarray) and small.shape == (2, 8, 8)
    assert EAGER_PLANES >= 2 * 2


def _resident_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_growing_an_inner_axis_allocates_nothing() -> None:
    """Issue 20's worst finding: a plate of 2 wells x 9 sites streamed one image at a time
    once asked numpy for tens of GiB when an inner axis grew. Now growing costs nothing."""
    source = MemoryPlanes()
    planes = LayerPlanes((1, 1), (512, 512), np.uint16, source)
    before = _resident_bytes()
    value = 0
    for well in range(2):
        if well:
            planes.insert(0, well)
        for site in range(9):
            if site >= planes.sizes[1]:
                planes.insert(1, site)
            value += 1
            planes.set((well, site), source.put(None, np.full((512, 512), value, np.uint16)))  # type: ignore[arg-type]
    view = planes.view()
    assert view.shape == (2, 9, 512, 512)
    assert [int(view[w, s].max()) for w in range(2) for s in range(9)] == list(range(1, 19))
    assert source.bytes == 18 * 512 * 512 * 2
    assert _resident_bytes() - before < 64 << 20  # 9 MiB of planes, nothing reserved


def test_plans_show_every_image_of_a_plate_streamed_one_at_a_time() -> None:
    plans = Plans()
    number = 0
    for site in range(1, 10):
        for well in ("A01", "A02"):
            number += 1
            item = image(
                (1, "raw"),
                (512, 512),
                "uint16",
                LayerKind.IMAGE,
                number,
                well=well,
                channel="DAPI",
                site=site,
            )
            plans.add(config(), received([item]))
    (layer,) = plans.store.layers.values()
    assert layer.array is not None and layer.array.shape == (2, 9, 512, 512)
    view = layer.array.view()
    shown = sorted(int(view[w, s].max()) for w in range(2) for s in range(9))
    assert shown == list(range(1, 19))


def test_live_stream_overwrites_one_plane_in_place() -> None:
    display = config()
    plans = Plans()
    item = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1, site=1)
    plans.add(display, [ReceivedImage(item, np.full((8, 8), 5, np.uint16))])
    stored = next(iter(plans.store.layers.values()))
    assert stored.array is not None
    array = stored.array
    first = plans.store.take_changes()
    assert first.created == [stored.name] and first.images == 1
    for frame in range(50):
        frame_item = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1, site=1)
        plans.add(display, [ReceivedImage(frame_item, np.full((8, 8), frame, np.uint16))])
    changes = plans.store.take_changes()
    assert stored.array is array  # the same planes napari reads: no growth, no copy
    assert changes.written == {stored.name} and not changes.reshaped and not changes.created
    assert changes.images == 50
    assert int(array.view()[0, 0, 0, 0]) == 49
    source = plans.store.source
    assert isinstance(source, MemoryPlanes) and source.bytes == 8 * 8 * 2  # old ones freed


def test_a_leased_image_rewritten_while_copied_is_blanked_not_shown() -> None:
    display = config()
    plans = Plans()
    first = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1, site=1)
    plans.add(display, [ReceivedImage(first, np.full((8, 8), 5, np.uint16))])
    stored = next(iter(plans.store.layers.values()))
    assert stored.array is not None and int(np.asarray(stored.array).max()) == 5
    plans.store.take_changes()
    book = LeaseBook(lambda: None)
    entries = {gen: np.array([gen, 0, 0, 0], "<u8") for gen in (4, 6)}
    sound = book.lend("p", 1, np.zeros(1), entries[4], generation=4)
    torn = book.lend("p", 2, np.zeros(1), entries[6], generation=4)  # slot now holds 6
    other = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1, site=2)
    newer = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1, site=1)
    plans.add(
        display,
        [
            ReceivedImage(other, np.full((8, 8), 7, np.uint16), sound),
            ReceivedImage(newer, np.full((8, 8), 9, np.uint16), torn),
        ],
    )
    view = np.asarray(stored.array)
    assert plans.store.take_torn() == [newer]
    assert int(view[..., 0, :, :].max()) == 0  # site 1: blanked, neither 5 nor 9
    assert int(view[..., 1, :, :].min()) == 7  # site 2: shown
    assert plans.store.take_changes().images == 1


def test_contrast_comes_from_the_first_plane_only() -> None:
    display = config()
    plans = Plans()
    first = np.zeros((8, 8), np.uint16)
    first[2:4, 2:4] = 900
    item = image((0, "raw"), (8, 8), "uint16", well="A01", channel=1)
    plans.add(display, [ReceivedImage(item, first)])
    later = image((0, "raw"), (8, 8), "uint16", well="A02", channel=1)
    plans.add(display, [ReceivedImage(later, np.full((8, 8), 60000, np.uint16))])
    stored = next(iter(plans.store.layers.values()))
    assert stored.contrast == (0.0, 900.0)
    assert estimate_contrast(np.full((2, 2), 7.0)) == (7.0, 8.0)
    assert estimate_contrast(np.array([np.nan, 1.0, 3.0])) == (1.0, 3.0)


def test_two_display_configs_naming_one_layer_get_separate_layers() -> None:
    plans = Plans()
    gray, green = config(colormap="gray"), config(colormap="green")
    item = image((0, "raw"), (4, 4), "uint8", well="A01", channel=1)
    plans.add(gray, [ReceivedImage(item, np.full((4, 4), 1, np.uint8))])
    twin = image((0, "raw"), (4, 4), "uint8", well="A01", channel=1)
    plans.add(green, [ReceivedImage(twin, np.full((4, 4), 2, np.uint8))])
    names = sorted(plans.store.layers)
    assert names == ["Step_00_raw_Channel_1", "Step_00_raw_Channel_1 (2)"]
    assert plans.store.layers[names[0]].colormap == "gray"
    assert plans.store.layers[names[1]].colormap == "green"
    assert int(np.asarray(plans.store.layers[names[1]].napari_data()).max()) == 2
    assert int(np.asarray(plans.store.layers[names[0]].napari_data()).max()) == 1


def test_describe_names_the_slice_in_registry_order() -> None:
    plans = Plans()
    items = [
        image((2, "blur"), (4, 4), "uint8", well=w, channel="DAPI", site=s)
        for w in ("A01", "B02")
        for s in (1, 2)
    ]
    plans.add(config(), received(items))
    (name,) = plans.store.layers
    assert plans.describe(name, (1, 0)) == "Step 02_blur | Well B02 | Channel DAPI | Site 001"
    assert plans.describe("nope", (0,)) == ""


@pytest.mark.parametrize("replace", [False, True])
def test_runs_from_extra_and_replace_layers(replace: bool) -> None:
    display = config(replace_layers=replace)
    plans = Plans()

    def item(well: str, run: int) -> ImageItem:
        return ImageItem(
            {"well": well, "channel": 1}, 0, "raw", (2, 2), "uint8", extra={"run": run}
        )

    plans.add(
        display, [ReceivedImage(item(w, 1), np.full((2, 2), 1, np.uint8)) for w in ("A01", "A02")]
    )
    plans.add(display, [ReceivedImage(item("A01", 2), np.full((2, 2), 2, np.uint8))])
    (stored,) = plans.store.layers.values()
    shown = [int(np.asarray(stored.napari_data()[w]).max()) for w in range(2)]
    assert shown == ([2, 0] if replace else [2, 1])
