"""Properties of planning over generated plates: placement, uniqueness, order independence."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layering_helpers import config, image, writes
from layering_replay import Replay

from platestream.config import DEFAULT_REGISTRY
from platestream.layering import (
    ImageItem,
    LayerKind,
    PlanState,
    layer_plans,
    locate,
    plan,
    update,
)

# Values already in canonical form, so the expectations below need no canonicalisation.
STEPS = [(0, "raw"), (1, "gaussian_blur"), (12, "mask_Well_x")]  # the last forges a segment
WELLS = ["A01", "A02", "A10", "B01", "P24", None]
CHANNELS = ["DAPI", "GFP", 2]
SITES = [1, 2, 10, None]
ZS = [None, 0, 3]
KINDS = [LayerKind.IMAGE, LayerKind.IMAGE, LayerKind.LABELS, LayerKind.POINTS]
SHAPES = [(6, 6), (4, 8)]
DTYPES = ["uint8", "uint16"]
COMPONENTS = ("well", "channel", "site", "z_index")

slot_keys = st.tuples(
    st.sampled_from(STEPS),
    st.sampled_from(WELLS),
    st.sampled_from(CHANNELS),
    st.sampled_from(SITES),
    st.sampled_from(ZS),
    st.sampled_from(KINDS),
)


@st.composite
def plates(draw: st.DrawFn, sizes: bool = True) -> list[ImageItem]:
    """Items with distinct planes (so which image a plane shows never depends on order)."""
    keys = draw(st.lists(slot_keys, min_size=1, max_size=40, unique=True))
    items = []
    for number, (step, well, channel, site, z, kind) in enumerate(keys, start=1):
        shape = draw(st.sampled_from(SHAPES)) if sizes else SHAPES[0]
        dtype = draw(st.sampled_from(DTYPES)) if sizes else DTYPES[0]
        values = dict(zip(COMPONENTS, (well, channel, site, z), strict=True))
        items.append(image(step, shape, dtype, kind, number, **values))
    return items


modes = st.fixed_dictionaries(
    {
        f"{c}_mode": st.sampled_from(["slice", "stack"])
        for c in ("well", "channel", "site", "z_index")
    }
)
any_modes = st.fixed_dictionaries(  # the step too: stacked, steps share one layer
    {
        f"{c}_mode": st.sampled_from(["slice", "stack"])
        for c in ("step", "well", "channel", "site", "z_index")
    }
)
handling = st.sampled_from(["separate_layers", "pad_to_max"])
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay_checks(result_ops: Any, items: list[ImageItem], state: PlanState) -> Replay:
    replay = Replay().apply(result_ops)
    for item in items:
        where = locate(state, item)
        assert where.live
        assert replay.shown(where.layer, where.index) == item.extra["id"]
    assert all("?" not in layer.labels for layer in replay.layers.values())
    return replay


@fast
@given(plates(), any_modes, handling)
def test_every_item_lands_in_exactly_one_layer_at_one_index(
    items: list[ImageItem], mode: dict[str, str], sizes: str
) -> None:
    result = plan(items, config(**mode, variable_size_handling=sizes))
    placed = writes(result.ops)
    assert sorted(w.item.extra["id"] for w in placed) == sorted(i.extra["id"] for i in items)
    assert len({(w.layer, w.index) for w in placed}) == len(items)
    for write in placed:
        assert locate(result.state, write.item).layer == write.layer
        assert locate(result.state, write.item).index == write.index
    assert sum(row.filled for row in layer_plans(result.state)) == len(items)
    replay_checks(result.ops, items, result.state)


@fast
@given(plates(), any_modes, handling, st.randoms(use_true_random=False), st.integers(1, 6))
def test_streaming_in_any_order_and_batches_ends_where_planning_at_once_does(
    items: list[ImageItem], mode: dict[str, str], sizes: str, rng: Any, batches: int
) -> None:
    cfg = config(**mode, variable_size_handling=sizes)
    at_once = plan(items, cfg)
    shuffled = list(items)
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(shuffled)), min(batches, len(shuffled)) - 1))
    state, ops = PlanState.empty(cfg), []
    for start, stop in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
        step = update(state, shuffled[start:stop])
        state, ops = step.state, [*ops, *step.ops]
    assert state == at_once.state
    assert layer_plans(state) == layer_plans(at_once.state)
    streamed = replay_checks(ops, items, state)
    assert streamed.snapshot() == Replay().apply(at_once.ops).snapshot()


def _stream(cfg: Any, calls: list[tuple[int, list[ImageItem]]]) -> tuple[PlanState, Replay]:
    state, replay = PlanState.empty(cfg), Replay()
    for run, batch in calls:
        step = update(state, batch, run=run)
        state = step.state
        replay.apply(step.ops)
    return state, replay


@fast
@given(plates(), st.data(), st.booleans(), any_modes)
def test_runs_streamed_in_any_order_end_in_the_same_plan(
    items: list[ImageItem], data: st.DataObject, replace: bool, mode: dict[str, str]
) -> None:
    cfg = config(**mode, replace_layers=replace)
    runs = [data.draw(st.integers(1, 3)) for _ in items]
    tagged = list(zip(runs, items, strict=True))
    in_order = [(run, [item]) for run, item in sorted(tagged, key=lambda pair: pair[0])]
    shuffled = data.draw(st.permutations(tagged))
    state, replay = _stream(cfg, [(run, [item]) for run, item in shuffled])
    expected_state, expected_replay = _stream(cfg, in_order)
    assert state == expected_state
    assert replay.snapshot() == expected_replay.snapshot()
    sliced = [c for c in COMPONENTS if mode[f"{c}_mode"] == "slice"]

    def group_of(item: ImageItem) -> tuple[Any, ...]:  # step and SLICE values
        step = item.step_index if mode["step_mode"] == "slice" else None
        return (step, tuple(item.components.get(c) for c in sliced))

    newest: dict[Any, int] = {}
    for run, item in tagged:  # replace_layers: a layer group shows only its newest run
        newest[group_of(item)] = max(newest.get(group_of(item), run), run)
    for run, item in tagged:
        group = group_of(item)
        shown = replay.shown(*_where(state, item, run))
        live = not replace or run == newest[group]
        assert (shown == item.extra["id"]) == live


def _where(state: PlanState, item: ImageItem, run: int) -> tuple[str, tuple[int, ...]]:
    where = locate(state, item, run)
    return where.layer, where.index


@fast
@given(plates(), plates())
def test_an_old_state_is_never_changed_by_planning_on_top_of_it(
    first: list[ImageItem], more: list[ImageItem]
) -> None:
    cfg = config()
    base = plan(first, cfg).state
    before = layer_plans(base)
    once, again = update(base, more, run=1), update(base, more, run=1)
    assert once.state == again.state and once.ops == again.ops
    assert layer_plans(base) == before


def _sliced_groups(items: list[ImageItem], sliced: list[str]) -> set[tuple[Any, ...]]:
    """The spec of layer identity: step, kind and the value of every SLICE component."""
    groups = set()
    for item in items:
        values = tuple((c, item.components.get(c)) for c in sliced)
        groups.add((item.step_index, item.step_name, item.kind, values))
    return groups


@fast
@given(plates(sizes=False), st.sampled_from(COMPONENTS), modes)
def test_slicing_or_stacking_a_component_changes_the_layer_count_as_predicted(
    items: list[ImageItem], component: str, mode: dict[str, str]
) -> None:
    counts = {}
    for choice in ("slice", "stack"):
        fields = {**mode, f"{component}_mode": choice}
        sliced = [c for c in COMPONENTS if fields[f"{c}_mode"] == "slice"]
        counts[choice] = len(_sliced_groups(items, sliced))
        assert len(layer_plans(plan(items, config(**fields)).state)) == counts[choice]
    # Slicing splits each stacked layer into one per value the component takes in it.
    stacked_sliced = [c for c in COMPONENTS if c != component and mode[f"{c}_mode"] == "slice"]
    per_layer: dict[Any, set[Any]] = {}
    for item in items:
        key = next(iter(_sliced_groups([item], stacked_sliced)))
        per_layer.setdefault(key, set()).add(item.components.get(component))
    assert counts["slice"] == sum(len(values) for values in per_layer.values())


names_text = st.text(alphabet="ab_WellChanSitZ0129 ", min_size=0, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), names_text, st.one_of(names_text, st.integers(0, 12))),
        min_size=1,
        max_size=12,
        unique=True,
    )
)
def test_layer_names_are_unique_even_for_values_that_look_like_segments(
    keys: list[tuple[int, str, Any]],
) -> None:
    items = [image((i, n), well="A01", channel=c) for i, n, c in keys]
    state = plan(items, config()).state
    # Digit strings are channel numbers: "01" and 1 are one channel, hence one layer.
    distinct = {(i, n, int(c) if isinstance(c, str) and c.isdigit() else c) for i, n, c in keys}
    layers = {locate(state, i).layer for i in items}
    assert len(layers) == len(distinct)  # no two layer identities share a name
    assert len(layer_plans(state)) == len(distinct)


HASHSEED_SCRIPT = textwrap.dedent(
    """
    import hashlib, random
    from platestream.config import ConfigLayer, NapariStreamingConfig, resolve
    from platestream.layering import ImageItem, PlanState, layer_plans, update

    def cfg(**fields):
        layer = ConfigLayer(NapariStreamingConfig(**fields), "t")
        return resolve(NapariStreamingConfig, [layer]).value

    items = []
    for w in ["A01", "B02", "A10", "C03"]:
        for c in ["DAPI", "GFP", "Cy5", "RFP", "BF", "Ph"]:
            for s in [1, 2, 3]:
                shape = (8, 8) if w != "B02" or s != 2 else (4, 4)
                values = {"well": w, "channel": c, "site": s}
                items.append(ImageItem(values, 1, "blur_x", shape, "uint16"))
    digest = hashlib.sha256()
    for fields in [{}, {"variable_size_handling": "pad_to_max"}, {"well_mode": "slice"}]:
        state = PlanState.empty(cfg(**fields))
        order = list(items)
        random.Random(7).shuffle(order)
        for start in range(0, len(order), 5):
            step = update(state, order[start:start + 5])
            state = step.state
            digest.update(repr(step.ops).encode())
        digest.update(repr(layer_plans(state)).encode())
    print(digest.hexdigest())
    """
)


def test_plans_do_not_depend_on_the_hash_seed() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    digests = set()
    for seed in ("0", "4242", "987654"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": src}
        out = subprocess.run(
            [sys.executable, "-c", HASHSEED_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert hashlib.sha256(b"").hexdigest() not in digests


def test_registry_order_is_the_order_of_axes_and_segments() -> None:
    cfg = config(well_mode="slice", channel_mode="slice", site_mode="slice", z_index_mode="stack")
    item = image(well="B02", channel="GFP", site=3, z_index=1, timepoint=2)
    (row,) = layer_plans(plan([item], cfg).state)
    labels = {c.name: c.label for c in DEFAULT_REGISTRY}
    assert (
        row.name
        == f"Step_01_blur_{labels['well']}_B02_{labels['channel']}_GFP_{labels['site']}_003"
    )
    assert row.axis_labels == (labels["timepoint"], labels["z_index"])
