"""The overview benchmark's parts run (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

import pytest

from platestream.bench import overview as bench
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(300)]


def test_the_overview_benchmark_measures_memory_and_cost_per_image() -> None:
    memory = bench.measure_memory(64)
    assert memory["384_tile"] == 64 and 0 < memory["384"] <= 5.0
    assert memory["1536"] > memory["384"]
    per_image = bench.measure_per_image(wells=6, side=256)
    assert per_image["images"] == 6 * 4 * 3
    assert per_image["shrink_blit_us_per_image"] > 0 and per_image["detail_us_per_image"] > 0
    assert per_image["ratio"] > 0
    text = bench.render(
        {
            "memory_64": memory,
            "memory_default": memory,
            "per_image": per_image,
            "on_off": {f"{p}_{m}": 1.0 for p in ("24", "96") for m in ("on", "off", "ratio")},
        }
    )
    assert "overview / detailed (target <= 0.2)" in text
