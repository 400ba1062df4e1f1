"""The Dask benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from platestream.bench import dask as bench


def test_the_dask_benchmark_compares_the_executors() -> None:
    results = bench.run(rows=1, columns=2, sites=1, size=64, repeats=1)
    assert [case["workers"] for case in results["cases"]] == [2, 1]
    for case in results["cases"]:
        assert case["images"] == 2 * 3 * 3  # wells x channels x steps
        assert case["pool_s"] > 0 and case["dask_s"] > 0 and case["cluster_startup_s"] > 0
        assert abs(case["ratio"] - case["dask_s"] / case["pool_s"]) < 1e-9
    assert "dask/pool" in bench.render(results)
