"""Many producers into one viewer: ``xvfb-run -a python -m platestream.bench.producers``.

Measures, in one run, with a real viewer process and lossless producer processes:

- ``many``: N producers (default 8) each streaming M images (default 200) of a side x side
  uint16 plane (default 1024) into their own well, one image per ``save``, until the
  viewer shows every image (or counts it dropped);
- ``one``: one producer streaming the same N x M images (the same wells, one after
  another: the same plate, so the viewer shows the same layers and plate overview);

each producer declares the plate's layout first, as a pipeline run does (``--undeclared``:
not, so layers grow as the images come);
- per case: MiB/s to all displayed (the producer processes started and warm before the
  clock starts), what was displayed and dropped, and the viewer's peak
  memory sampled from ``/proc`` every 0.2 s: anonymous (what the viewer itself holds) and
  resident (which also counts the producers' shared-memory pools it maps).

The figures are ratios against this run's own data size and one-producer throughput;
``--repeats N`` runs both cases N times, interleaved, and reports the repeat whose ratio is
the median (and every ratio). ``--nice 10`` runs the producers as a pipeline run's
workers run: 10 nicer, and their session 10 nicer than the viewer's (pipeline._priority).
``--store memory`` measures the in-RAM viewer (every plane kept in RAM), the default
``disk`` the run store with its bounded cache.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import threading
import time
from typing import Any

import numpy as np

from platestream.bench import report
from platestream.config import NapariStreamingConfig
from platestream.pipeline import session_nicer
from platestream.viewer.manager import NapariStreamVisualizer

from .viewer import _free_port, _wait


def _warm(ready: Any, niceness: int = 0) -> None:
    """Import the producer side, then wait until every worker did (so each takes one).
    ``niceness``: run at that lower priority, as a pipeline's workers do."""
    import os

    import platestream.backend  # noqa: F401

    if niceness:
        os.nice(niceness)
    ready.wait(120)


def _produce(
    port: int, wells: list[int], images: int, side: int, plate: int, pool_mb: int
) -> dict[str, Any]:
    """Stream ``images`` sites of each well of ``wells``, well by well; ``plate``: the
    plate's well count, declared first (0: no declaration)."""
    from platestream.backend import NapariStreamingBackend

    cpu = time.process_time()
    config = NapariStreamingConfig(napari_port=port, delivery="lossless", shm_pool_mb=pool_mb)
    backend = NapariStreamingBackend(config)
    if plate:  # the plate's layout, as a pipeline run declares it
        names = [f"A{w + 1:02d}" for w in range(plate)]
        backend.declare_layout({"well": names, "site": list(range(1, images + 1))})
    for well in wells:
        for index in range(images):
            plane = np.full((side, side), index % 60000, np.uint16)
            backend.save(plane, {"well": f"A{well + 1:02d}", "site": index + 1})
    backend.close()
    return {
        "sent": backend.totals.sent,
        "dropped": sum(backend.totals.dropped.values()),
        "cpu_s": time.process_time() - cpu,
    }


def _memory_mib(pid: int) -> dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                found[key] = int(value.split()[0]) // 1024
    return found


def _case(
    producers: int,
    wells: int,
    images: int,
    side: int,
    store: str = "disk",
    declare: bool = True,
    pool_mb: int = 256,
    niceness: int = 0,
) -> dict[str, Any]:
    port = _free_port()
    config = NapariStreamingConfig(napari_port=port, store=store)
    with NapariStreamVisualizer(config, title="bench producers", persistent=False) as viewer:
        viewer.start_viewer(async_mode=False)
        assert viewer.pong is not None
        pid = viewer.pong.pid
        start = _memory_mib(pid)
        peak = dict(start)
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    now = _memory_mib(pid)
                except OSError:
                    return
                for key, value in now.items():
                    peak[key] = max(peak.get(key, 0), value)
                stop.wait(0.2)

        total = wells * images
        shares = [list(range(wells))[first::producers] for first in range(producers)]
        context = multiprocessing.get_context("spawn")
        with (
            session_nicer(niceness),  # as a pipeline run's session (pipeline._priority)
            context.Manager() as manager,
            context.Pool(producers) as pool,
        ):
            # Every worker started and imported what it streams with before the clock
            # starts: the figure is the streaming's, not the interpreters' start-up.
            ready = manager.Barrier(producers)
            pool.starmap(_warm, [(ready, niceness)] * producers, chunksize=1)
            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.monotonic()
            reports = pool.starmap(
                _produce,
                [(port, share, images, side, wells if declare else 0, pool_mb) for share in shares],
                chunksize=1,
            )
        status = _wait(
            viewer,
            lambda s: s.state.display.displayed + sum(s.dropped.values()) >= total,
            600,
        )
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
    data_mib = total * side * side * 2 / 2**20
    return {
        "producers": producers,
        "images": total,
        "data_mib": data_mib,
        "seconds": elapsed,
        "mib_per_s": data_mib / elapsed,
        "displayed": status.state.display.displayed,
        "dropped_by_viewer": dict(status.dropped),
        "dropped_by_producers": sum(r["dropped"] for r in reports),
        "producers_cpu_s": sum(r["cpu_s"] for r in reports),
        "peak_anon_mib": peak["RssAnon"] - start["RssAnon"],
        "peak_rss_mib": peak["VmRSS"] - start["VmRSS"],
    }


def run(
    producers: int = 8,
    images: int = 200,
    side: int = 1024,
    store: str = "disk",
    declare: bool = True,
    pool_mb: int = 256,
    niceness: int = 0,
    repeats: int = 1,
) -> dict[str, Any]:
    """Both cases ``repeats`` times, interleaved (many, one, many, one, ...); the figures
    of the repeat with the median many/one ratio, and every repeat's ratio."""
    pairs = []
    for _ in range(max(1, repeats)):
        many = _case(producers, producers, images, side, store, declare, pool_mb, niceness)
        one = _case(1, producers, images, side, store, declare, pool_mb, niceness)
        pairs.append((many["mib_per_s"] / one["mib_per_s"], many, one))
    pairs.sort(key=lambda pair: pair[0])
    ratio, many, one = pairs[len(pairs) // 2]
    return {
        "store": store,
        "declared": declare,
        "pool_mb": pool_mb,
        "producer_niceness": niceness,
        "many": many,
        "one": one,
        "many_vs_one_throughput": ratio,
        "ratios": [pair[0] for pair in pairs],
        "many_anon_vs_data": many["peak_anon_mib"] / many["data_mib"],
        "one_anon_vs_data": one["peak_anon_mib"] / one["data_mib"],
    }


def render(results: dict[str, Any]) -> str:
    rows = [
        ("viewer store", str(results.get("store", "disk"))),
        ("plate layout declared", "yes" if results.get("declared", True) else "no"),
        ("each producer's pool", f"{results.get('pool_mb', 256)} MiB"),
        ("producers' niceness", str(results.get("producer_niceness", 0))),
    ]
    for name in ("many", "one"):
        case = results[name]
        rows += [
            (
                f"{case['producers']} producer(s), {case['images']} images",
                f"{case['mib_per_s']:.0f} MiB/s",
            ),
            ("  displayed / dropped", f"{case['displayed']} / {case['dropped_by_viewer']}"),
            (
                "  seconds / producers' CPU seconds",
                f"{case['seconds']:.1f} / {case['producers_cpu_s']:.1f}",
            ),
            (
                "  viewer peak anon / RSS over start",
                f"{case['peak_anon_mib']} / {case['peak_rss_mib']} MiB",
            ),
        ]
    ratios = results.get("ratios", [results["many_vs_one_throughput"]])
    if len(ratios) > 1:
        rows.append(
            (f"many / one, each of {len(ratios)} repeats", " ".join(f"{r:.2f}" for r in ratios))
        )
    rows += [
        ("many / one throughput (target >= 1)", f"{results['many_vs_one_throughput']:.2f}"),
        ("many: anon / data (target <= 1.1)", f"{results['many_anon_vs_data']:.2f}"),
        ("one: anon / data", f"{results['one_anon_vs_data']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>14}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.producers")
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--images", type=int, default=200, help="per producer")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument(
        "--store", choices=("disk", "memory"), default="disk", help="the viewer's store"
    )
    parser.add_argument(
        "--undeclared",
        action="store_true",
        help="producers do not declare the plate's layout (layers grow as images come)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--pool-mb", type=int, default=256, help="each producer's shm_pool_mb (default 256)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="producers, and their session, run this much nicer than the viewer, as a "
        "pipeline run's workers do (WORKER_NICENESS: 10)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run both cases this many times, interleaved; report the median ratio's repeat",
    )
    args = parser.parse_args(argv)
    results = run(
        args.producers,
        args.images,
        args.side,
        args.store,
        not args.undeclared,
        args.pool_mb,
        args.nice,
        args.repeats,
    )
    return report(results, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
