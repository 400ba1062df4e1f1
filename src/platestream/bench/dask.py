"""The Dask executor against the local process pool: ``python -m platestream.bench.dask``.

The demo pipeline over the same synthetic plate, streaming (lossless) to a live viewer
(the headless receiver, in its own process), with the same number of workers, in one run:

- ``pool``: the local process pool (``executor="local"``);
- ``dask``: a Dask LocalCluster of worker processes, started once and reused by every
  repeat, as a cluster is (its start-up is reported apart);

and, for the cost a cluster adds per task, the same plate with one worker each. Each
figure is the median of ``repeats`` runs, the cases interleaved. Target: the Dask run's
wall time at most 1.15x the pool's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from platestream.bench import report
from platestream.bench.pipeline import _with_streaming, headless_viewer
from platestream.pipeline import (
    RunOptions,
    SyntheticPlate,
    demo_pipeline,
    run_pipeline,
    write_plate,
)

TARGET_RATIO = 1.15


def _cluster(workers: int) -> tuple[Any, Any, float]:
    import importlib

    distributed: Any = importlib.import_module("distributed")
    started = time.monotonic()
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    return cluster, client, time.monotonic() - started


def _case(workers: int, root: Path, repeats: int, wells: int) -> dict[str, Any]:
    cluster, client, startup = _cluster(workers)
    times: dict[str, list[float]] = {"pool": [], "dask": []}
    streamed = 0
    try:
        for _ in range(repeats):
            for name in ("pool", "dask"):
                with headless_viewer() as (port, _process):
                    pipeline = _with_streaming(
                        demo_pipeline(workers=workers), napari_port=port, delivery="lossless"
                    )
                    options = RunOptions(workers=workers, connect_timeout_s=10.0)
                    started = time.monotonic()
                    result = run_pipeline(
                        pipeline, root, options, client=client if name == "dask" else None
                    )
                    times[name].append(time.monotonic() - started)
                    if result.exit_code:
                        raise RuntimeError(f"benchmark pipeline failed: {result.failures}")
                    streamed = result.streamed
    finally:
        client.close()
        cluster.close()
    pool, dask = statistics.median(times["pool"]), statistics.median(times["dask"])
    return {
        "workers": workers,
        "pool_s": pool,
        "dask_s": dask,
        "ratio": dask / pool,
        "images": streamed,
        "pool_images_per_s": streamed / pool,
        "dask_images_per_s": streamed / dask,
        "dask_extra_ms_per_task": (dask - pool) / wells * 1000 * workers,
        "cluster_startup_s": startup,
    }


def run(
    rows: int = 4, columns: int = 6, sites: int = 4, size: int = 512, repeats: int = 3
) -> dict[str, Any]:
    plate = SyntheticPlate(name="bench", rows=rows, columns=columns, sites=sites, size=size)
    wells = rows * columns
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_plate(plate, root)
        cases = [_case(workers, root, repeats, wells) for workers in (2, 1)]
    return {"plate": f"{wells} wells x 3 channels x {sites} sites, {size} px", "cases": cases}


def render(results: dict[str, Any]) -> str:
    rows = [
        f"demo pipeline, {results['plate']}, streaming to a live viewer (medians)",
        f"  {'workers':>7} {'pool s':>8} {'dask s':>8} {'dask/pool':>10} {'pool img/s':>11} "
        f"{'dask img/s':>11} {'ms/task':>8} {'cluster start s':>16}",
    ]
    for case in results["cases"]:
        rows.append(
            f"  {case['workers']:>7} {case['pool_s']:8.2f} {case['dask_s']:8.2f} "
            f"{case['ratio']:10.2f} {case['pool_images_per_s']:11.0f} "
            f"{case['dask_images_per_s']:11.0f} {case['dask_extra_ms_per_task']:8.0f} "
            f"{case['cluster_startup_s']:16.2f}"
        )
    first = results["cases"][0]
    met = "met" if first["ratio"] <= TARGET_RATIO else "MISSED"
    rows.append(
        f"  target: dask <= {TARGET_RATIO}x the pool with {first['workers']} workers: {met}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.dask")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (medians)")
    parser.add_argument("--rows", type=int, default=4, help="plate rows (default 4)")
    parser.add_argument("--columns", type=int, default=6, help="plate columns (default 6)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    return report(run(args.rows, args.columns, repeats=args.repeats), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
