"""The live-under-load benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

import pytest

from platestream.bench import live as bench
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(300)]


def test_the_live_benchmark_measures_latency_loaded_and_idle() -> None:
    results = bench.run(rows=1, columns=2, sites=1, size=64, again=6)
    images = 2 * 3 * 3  # wells x channels x steps
    for case, expected in (("loaded", images), ("idle", images), ("layers_exist", 2 * images)):
        figures = results[case]
        assert figures["streamed"] == expected and figures["images"] == expected
        assert 0 <= figures["p50_ms"] <= figures["p99_ms"]
    assert "loaded p99 / idle p99" in bench.render(results)
    assert "once the layers exist" in bench.render(results)
