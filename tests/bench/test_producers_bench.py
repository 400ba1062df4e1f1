"""The many-producers benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

import pytest

from platestream.bench import producers as bench
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]


def test_the_producers_benchmark_runs_and_accounts_for_every_image() -> None:
    results = bench.run(producers=2, images=5, side=64)
    for name in ("many", "one"):
        case = results[name]
        assert case["images"] == 10
        assert case["displayed"] + sum(case["dropped_by_viewer"].values()) == 10
        assert case["mib_per_s"] > 0
    assert "many / one throughput" in bench.render(results)
