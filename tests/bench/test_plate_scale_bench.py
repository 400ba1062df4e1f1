"""The plate-scale benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from platestream.bench import plate_scale as bench
from platestream.bench import suite
from tests.viewer.conftest import GUI

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(300)]


def test_the_plate_scale_benchmark_runs_and_cleans_up(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    results = bench.run(folder=folder, cold=False, screen_wells=1, many_wells=10)
    screen, many = results["screen"], results["many"]
    assert screen["images"] == 36 and screen["stored"] == 36 and not screen["unstored"]
    assert screen["dropped"] == {} and screen["mb_per_s"] > 0 and screen["open_s"] > 0
    assert screen["one_well_open_s"] > 0 and screen["empty_viewer_s"] > 0
    assert many["images"] == 10 * 9 * 5 and many["stored"] == many["images"]
    assert results["disk_mb_per_s"] > 0
    assert list(folder.iterdir()) == []  # the runs and the speed probe are gone
    text = bench.render(results)
    assert "screen: / disk speed" in text and "many: last / first" in text
    rows = suite.plate_scale_rows(results)
    assert rows[0].figure.startswith("screen of 36 images") and "MB/s" in rows[0].value
