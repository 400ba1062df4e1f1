"""The transport benchmark runs end to end (tiny frames: a smoke test, not a timing)."""

from __future__ import annotations

from platestream.bench.transport import render, run

from ..hygiene import our_segments


def test_the_benchmark_runs_and_reports_every_figure() -> None:
    results = run(frame_mib=(1,), bytes_per_run=4 << 20)
    row = results["frames"]["1 MiB"]
    for key in ("plain", "shm", "shm_copy", "fresh", "inline", "zmq", "shm/plain", "shm/fresh"):
        assert row[key] > 0
    assert results["save_batch_no_viewer"]["median_ms"] > 0
    assert "shm/fresh" in render(results)
    assert not our_segments()
