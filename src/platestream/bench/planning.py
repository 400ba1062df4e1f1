"""Layer planning on a 384-well plate x 4 channels x 9 sites (13,824 images).

    python -m platestream.bench.planning

Measures, in one run and on this machine: building the items (the baseline: the least work
any planner must be handed), sorting them naturally (a second baseline), planning the whole
plate at once, streaming it one image at a time in a shuffled order, and one more image on
a full plate. The garbage collector stays enabled while timing, as it is in a viewer.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from platestream.config import default_display, natural_key, normalize_well, well_key
from platestream.layering import ImageItem, PlanState, plan, update

WELLS = [normalize_well((row, col)) for row in range(1, 17) for col in range(1, 25)]
CHANNELS = ("DAPI", "GFP", "RFP", "Cy5")
SITES = range(1, 10)
TARGETS = {"plan_ms": 100.0, "one_more_us": 50.0}


def make_items() -> list[ImageItem]:
    return [
        ImageItem({"well": w, "channel": c, "site": s}, 1, "gaussian_blur", (2048, 2048), "uint16")
        for w in WELLS
        for c in CHANNELS
        for s in SITES
    ]


def _median_ms(action: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median, min) wall time of ``action`` in ms.

    The collector runs before each repeat (untimed) so every repeat starts from the same
    state; it stays enabled while timing, as it would be in a viewer.
    """
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def _per_call_us(action: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        action()
    return (time.perf_counter() - start) / calls * 1e6


def _sort_key(item: ImageItem) -> tuple[Any, ...]:
    c = item.components
    return (natural_key(c["channel"]), well_key(c["well"]), natural_key(c["site"]))


def run(repeats: int = 7, calls: int = 2000) -> dict[str, float]:
    """The figures, keyed by name; times in ms (``_ms``) or microseconds (``_us``)."""
    config = default_display()
    items = make_items()
    shuffled = list(items)
    random.Random(384).shuffle(shuffled)
    figures: dict[str, float] = {"items": float(len(items))}
    figures["construct_ms"], _ = _median_ms(make_items, repeats)
    figures["sort_ms"], _ = _median_ms(lambda: sorted(shuffled, key=_sort_key), repeats)
    figures["plan_ms"], figures["plan_min_ms"] = _median_ms(lambda: plan(shuffled, config), repeats)
    figures["plan_per_item_us"] = figures["plan_ms"] * 1e3 / len(items)
    figures["plan_vs_construct"] = figures["plan_ms"] / figures["construct_ms"]

    state = PlanState.empty(config)
    start = time.perf_counter()
    for item in shuffled:
        state = update(state, [item]).state
    figures["stream_us_per_item"] = (time.perf_counter() - start) / len(items) * 1e6

    # The state is persistent, so the same "one more image" can be planned again and again.
    almost = plan(shuffled[:-1], config).state
    last = shuffled[-1]
    figures["one_more_us"] = _per_call_us(lambda: update(almost, [last]), calls)
    figures["one_again_us"] = _per_call_us(lambda: update(state, [last]), calls)
    return figures


ROWS = [
    ("items", "images in the plate", "", "{:.0f}"),
    ("construct_ms", "baseline: build the ImageItems", "ms", "{:.1f}"),
    ("sort_ms", "baseline: sort them naturally", "ms", "{:.1f}"),
    ("plan_ms", "plan the whole plate at once (median)", "ms", "{:.1f}"),
    ("plan_min_ms", "  fastest of the repeats", "ms", "{:.1f}"),
    ("plan_per_item_us", "  per image", "us", "{:.2f}"),
    ("plan_vs_construct", "  relative to building the items", "x", "{:.2f}"),
    ("stream_us_per_item", "stream the plate one image per call (mean)", "us", "{:.1f}"),
    ("one_more_us", "one more image on a full plate (new plane)", "us", "{:.1f}"),
    ("one_again_us", "one image again (a plane already filled)", "us", "{:.1f}"),
]


def table(figures: dict[str, float]) -> str:
    lines = [f"{'figure':46} {'value':>10}  {'target':>8}"]
    for key, label, unit, fmt in ROWS:
        target = TARGETS.get(key)
        mark = (
            ""
            if target is None
            else (f"< {target:g}" + (" ok" if figures[key] < target else " MISSED"))
        )
        lines.append(f"{label:46} {fmt.format(figures[key]):>8} {unit:2}  {mark}")
    return "\n".join(lines)


def main() -> None:
    print(table(run()))


if __name__ == "__main__":
    main()
