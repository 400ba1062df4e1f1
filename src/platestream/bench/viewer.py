"""Viewer benchmark: ``xvfb-run -a python -m platestream.bench.viewer``.

Measures, in one run, with a real viewer process:

- ``startup``: from ``start_viewer()`` to the first image shown (the image is sent right
  after ``start_viewer`` returns, so it waits in the manager's queue meanwhile);
- ``plate``: streaming a plate (default 24 wells x 4 channels x 4 sites of 1024 x 1024
  uint16, one batch per well, lossless) until the viewer has shown every image, against
  the **floor**: the same four layers built by calling napari directly in this process
  (stack the arrays, ``add_image`` with the same contrast limits, let Qt settle);
- ``latency``: send-to-display p50/p99 of a live 2048 x 2048 stream paced at 20 frames/s,
  as the viewer reports it (``sent_at`` to the end of the apply that showed it);
- ``memory``: the viewer's resident memory after 1,000 and 10,000 live frames of one
  plane (default 1024 x 1024): bounded means the two are about equal.

Sizes are parameters (``--plate-side``, ``--memory-side``, ``--frames``) for slow machines;
the defaults are the issue's. Progress is waited for by asking the viewer (``status``);
the only timed pause is the latency stream's frame pacing.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from platestream.bench import report
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.viewer.manager import NapariStreamVisualizer

WELLS = [f"{row}{col:02d}" for row in "ABCD" for col in range(1, 7)]  # 24 wells


def _free_port() -> int:
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if 20000 <= port <= 60000:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + 1000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def _wait(visualizer: NapariStreamVisualizer, done: Any, timeout_s: float) -> Any:
    """Ask the viewer until ``done(status)``; returns that status."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        status = visualizer.status()
        if status is not None and done(status):
            return status
        pause.wait(0.005)
    raise TimeoutError("the viewer did not get there in time")


def _item(well: str, channel: int, site: int, shape: tuple[int, ...]) -> ImageItem:
    components: dict[str, int | str] = {"well": well, "channel": channel, "site": site}
    return ImageItem(components, 0, "raw", shape, "uint16")


def _plate_images(side: int, channels: int, sites: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 4096, (side, side), dtype=np.uint16) for _ in range(channels * sites)]


def measure_startup(port: int, store_dir: str = "") -> tuple[NapariStreamVisualizer, float]:
    config = NapariStreamingConfig(napari_port=port, delivery="lossless", store_dir=store_dir)
    visualizer = NapariStreamVisualizer(config, title="bench", persistent=False)
    image = np.zeros((256, 256), np.uint16)
    start = time.perf_counter()
    visualizer.start_viewer()
    visualizer.save_batch([image], [_item("A01", 1, 1, image.shape)])
    _wait(visualizer, lambda s: s.state.display.displayed >= 1, 120)
    return visualizer, time.perf_counter() - start


def measure_plate(
    visualizer: NapariStreamVisualizer, side: int, wells: int, declared: bool = True
) -> float:
    """The plate streamed well by well; ``declared``: its layout declared first, as the
    pipeline runner does."""
    channels, sites = 4, 4
    images = _plate_images(side, channels, sites)
    visualizer.clear()
    # from a quiet viewer: the run store has written the previous plate
    before = _wait(visualizer, lambda s: s.state.display.store_queued_bytes == 0, 600)
    shown = before.state.display.displayed
    total = wells * channels * sites
    start = time.perf_counter()
    if declared:
        layout: dict[str, list[Any]] = {
            "well": WELLS[:wells],
            "channel": list(range(1, channels + 1)),
            "site": list(range(1, sites + 1)),
        }
        visualizer.declare_layout(layout)
    for well in WELLS[:wells]:
        items = [
            _item(well, channel, site, (side, side))
            for channel in range(1, channels + 1)
            for site in range(1, sites + 1)
        ]
        visualizer.save_batch(images, items)
    _wait(visualizer, lambda s: s.state.display.displayed >= shown + total, 600)
    return time.perf_counter() - start


def measure_floor(side: int, wells: int) -> float:
    """The same layers built by calling napari directly, in this process."""
    import napari
    from qtpy.QtWidgets import QApplication

    channels, sites = 4, 4
    images = _plate_images(side, channels, sites)
    viewer = napari.Viewer(title="floor", show=True)
    try:
        start = time.perf_counter()
        for channel in range(channels):
            data = np.empty((wells, sites, side, side), np.uint16)
            for well in range(wells):
                for site in range(sites):
                    data[well, site] = images[channel * sites + site]
            first = images[channel * sites]
            limits = (float(first.min()), float(first.max()))
            layer = viewer.add_image(data, name=f"Channel_{channel + 1}", contrast_limits=limits)
            layer.axis_labels = ("Well", "Site", "Y", "X")
        QApplication.processEvents()
        return time.perf_counter() - start
    finally:
        viewer.close()


def measure_latency(visualizer: NapariStreamVisualizer, frames: int = 200) -> dict[str, float]:
    visualizer.clear()
    frame = np.random.default_rng(1).integers(0, 4096, (2048, 2048), dtype=np.uint16)
    item = _item("A01", 1, 1, frame.shape)
    live = NapariStreamingConfig(napari_port=visualizer.port, delivery="live")
    producer = NapariStreamVisualizer(live, persistent=True)
    producer.start_viewer(async_mode=False)  # reuses the viewer: a second, live producer
    pace = threading.Event()
    next_at = time.perf_counter()
    for _ in range(frames):
        producer.save_batch([frame], [item])
        next_at += 1 / 20
        pace.wait(max(0.0, next_at - time.perf_counter()))  # the stream's frame rate
    status = _wait(visualizer, lambda s: s.state.queue_depth == 0, 60)
    producer.close()
    display = status.state.display
    return {"p50_ms": display.latency_p50_ms, "p99_ms": display.latency_p99_ms}


def measure_memory(visualizer: NapariStreamVisualizer, side: int, frames: int) -> dict[str, float]:
    visualizer.clear()
    frame = np.zeros((side, side), np.uint16)
    item = _item("A01", 1, 1, frame.shape)
    live = NapariStreamingConfig(napari_port=visualizer.port, delivery="live")
    producer = NapariStreamVisualizer(live, persistent=True)
    producer.start_viewer(async_mode=False)
    marks = {}
    for sent in range(1, frames + 1):
        frame[0, 0] = sent % 4096
        producer.save_batch([frame], [item])
        if sent in (frames // 10, frames):
            status = _wait(visualizer, lambda s: s.state.queue_depth == 0, 60)
            marks[sent] = status.state.memory_bytes / 2**20
    producer.close()
    (small, rss_small), (large, rss_large) = sorted(marks.items())
    return {
        f"rss_mib_after_{small}": rss_small,
        f"rss_mib_after_{large}": rss_large,
        "growth_mib": rss_large - rss_small,
    }


def run(
    plate_side: int = 1024,
    wells: int = 24,
    memory_side: int = 1024,
    frames: int = 10_000,
    latency_frames: int = 200,
) -> dict[str, Any]:
    results: dict[str, Any] = {"plate_side": plate_side, "wells": wells}
    results["floor_s"] = min(measure_floor(plate_side, wells) for _ in range(2))
    with tempfile.TemporaryDirectory(prefix="platestream-bench-") as runs:  # the run store
        visualizer, results["startup_s"] = measure_startup(_free_port(), runs)
        try:
            results["plate_s"] = min(measure_plate(visualizer, plate_side, wells) for _ in range(2))
            results["plate_undeclared_s"] = measure_plate(
                visualizer, plate_side, wells, declared=False
            )
            results["plate_vs_floor"] = results["plate_s"] / results["floor_s"]
            results["latency_2048"] = measure_latency(visualizer, latency_frames)
            results["memory"] = measure_memory(visualizer, memory_side, frames)
        finally:
            visualizer.stop()
    return results


def render(results: dict[str, Any]) -> str:
    side, wells = results["plate_side"], results["wells"]
    plate = f"plate {wells}x4x4 of {side}x{side} uint16"
    latency, memory = results["latency_2048"], results["memory"]
    rows = [
        ("start_viewer -> first image shown", f"{results['startup_s']:.2f} s"),
        (f"{plate}: viewer, layout declared", f"{results['plate_s']:.2f} s"),
        (f"{plate}: viewer, layers growing", f"{results['plate_undeclared_s']:.2f} s"),
        (f"{plate}: napari directly (floor)", f"{results['floor_s']:.2f} s"),
        ("viewer / floor (target <= 1.2)", f"{results['plate_vs_floor']:.2f}"),
        ("live 2048x2048 send->display p50", f"{latency['p50_ms']:.1f} ms"),
        ("live 2048x2048 send->display p99", f"{latency['p99_ms']:.1f} ms"),
        *(
            (f"viewer RSS {key.removeprefix('rss_mib_')}", f"{value:.0f} MiB")
            for key, value in memory.items()
            if key.startswith("rss")
        ),
        ("RSS growth", f"{memory['growth_mib']:+.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.viewer")
    parser.add_argument("--plate-side", type=int, default=1024)
    parser.add_argument("--wells", type=int, default=24, choices=range(1, 25), metavar="1-24")
    parser.add_argument("--memory-side", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    results = run(args.plate_side, args.wells, args.memory_side, args.frames)
    return report(results, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
