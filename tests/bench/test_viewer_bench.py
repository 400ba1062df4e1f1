"""The viewer benchmark runs end to end (tiny sizes; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from platestream.bench import viewer as bench
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(180)]


def test_the_viewer_benchmark_runs() -> None:
    results = bench.run(plate_side=64, wells=2, memory_side=64, frames=200, latency_frames=10)
    assert results["startup_s"] > 0 and results["plate_s"] > 0 and results["floor_s"] > 0
    assert set(results["memory"]) == {"rss_mib_after_20", "rss_mib_after_200", "growth_mib"}
    assert "viewer / floor" in bench.render(results)
