"""The shapes benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

import pytest

from platestream.bench import shapes as bench
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]


def test_the_shapes_benchmark_shows_everything_and_times_the_gui() -> None:
    results = bench.run(wells=100)
    assert results["items"] == 200 and results["polygons"] == 400
    assert results["gui_wait_longest_ms"] >= results["gui_wait_idle_ms"] > 0
    assert 0 <= results["shapes_pending_max"] <= results["polygons"]
    assert "GUI-thread request" in bench.render(results)
