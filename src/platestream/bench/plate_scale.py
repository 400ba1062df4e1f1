"""Plate-scale benchmark: ``xvfb-run -a python -m platestream.bench.plate_scale [--large]``.

Measures, with real viewer processes writing real run stores (in ``--dir``, removed after):

- ``disk``: the disk's sequential write speed (1 GiB written and fsynced in the run
  folder's file system), the baseline of the store's throughput;
- ``screen``: a 384-well x 9-site x 4-channel plate of 1024 x 1024 uint16 (13,824 images,
  29 GB; scaled down by ``--wells``) streamed lossless into a viewer with
  ``viewer_memory_mb = 1024``: the viewer's peak resident memory against its start, the
  sustained MB/s from first send to the last plane on disk (against the disk's speed),
  and the time ``platestream open`` takes to show the finished run;
- ``many``: a 1536-well plate (rows A..AF, 48 columns) x 9 sites x 5 channels of 256 x 256
  uint16 (69,120 images; scaled by ``--many-wells``): bounded viewer memory, and the cost
  per image in the first and the last tenth of the plate (flat: it does not grow).

Without ``--large`` the sizes are small (a smoke run of a minute); ``--large`` runs the
issue's sizes (tens of minutes). Progress is waited for by asking the viewer (``status``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from platestream.bench import report
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.store import row_name
from platestream.viewer.manager import NapariStreamVisualizer, stop_viewer

from .viewer import _free_port

SMALL = {"screen_wells": 12, "many_wells": 96}
LARGE = {"screen_wells": 384, "many_wells": 1536}


def disk_write_speed(folder: Path, size_mib: int = 1024) -> float:
    """MB/s of writing ``size_mib`` MiB sequentially and fsyncing it (like ``dd``)."""
    block = np.random.default_rng(0).integers(0, 255, 8 << 20, dtype=np.uint8).tobytes()
    path = folder / "disk-speed.bin"
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as out:
        for _ in range(size_mib // 8):
            out.write(block)
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return size_mib * 2**20 / 1e6 / elapsed


def microscopy_planes(side: int, count: int) -> list[np.ndarray]:
    """Smooth cell-like blobs over a background, with shot noise: compresses like real
    fluorescence planes (not like random bytes, not like zeros)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    planes = []
    for _ in range(count):
        image = np.full((side, side), 300.0, np.float32)
        for cy, cx in rng.uniform(0, side, (24, 2)):
            radius = side / 40
            image += 2000 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
        image += rng.normal(0, 30, image.shape)
        planes.append(np.clip(image, 0, 65535).astype(np.uint16))
    return planes


def stream_wells(
    send: Any,
    wells: list[str],
    sites: int,
    channels: list[str],
    planes: list[np.ndarray],
    each: Any = None,
) -> int:
    """Every well's sites x channels as one batch, ``send(arrays, items)`` (step 1, "raw"),
    the planes taken in turn; ``each(index)`` after each well. Returns the images sent."""
    number = 0
    for index, well in enumerate(wells):
        arrays, items = [], []
        for site in range(1, sites + 1):
            for channel in channels:
                plane = planes[number % len(planes)]
                arrays.append(plane)
                number += 1
                components: dict[str, int | str] = {"well": well, "site": site, "channel": channel}
                items.append(ImageItem(components, 1, "raw", plane.shape, str(plane.dtype)))
        send(arrays, items)
        if each is not None:
            each(index)
    return number


def wells_of(count: int) -> list[str]:
    """``count`` wells of the plate format that holds them, row by row (A01, A02...)."""
    columns = 48 if count > 384 else 24 if count > 96 else 12
    return [f"{row_name(i // columns)}{i % columns + 1:02d}" for i in range(count)]


class _PeakMemory:
    """The viewer's resident memory, sampled from its status while a plate streams."""

    def __init__(self, visualizer: NapariStreamVisualizer) -> None:
        self.visualizer = visualizer
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            status = self.visualizer.status(timeout_s=2.0)
            if status is not None:
                self.peak = max(self.peak, status.state.memory_bytes)


def _wait(visualizer: NapariStreamVisualizer, done: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        status = visualizer.status(timeout_s=5.0)
        if status is not None and done(status):
            return status
        pause.wait(0.05)
    raise TimeoutError("the viewer did not get there in time")


def _viewer(folder: Path, memory_mb: int, title: str) -> NapariStreamVisualizer:
    config = NapariStreamingConfig(
        napari_port=_free_port(),
        delivery="lossless",
        lossless_budget_s=600.0,
        store_dir=str(folder),
        viewer_memory_mb=memory_mb,
    )
    visualizer = NapariStreamVisualizer(config, title=title, persistent=False)
    visualizer.start_viewer(async_mode=False)
    if visualizer.pong is None:
        raise RuntimeError(f"the viewer did not start: {visualizer.error}")
    return visualizer


def measure_screen(
    folder: Path, wells: int, side: int = 1024, memory_mb: int = 1024, cold: bool = True
) -> dict[str, Any]:
    """The screen streamed, stored and reopened; ``cold``: the page cache is dropped
    before each open (root only), as for a run opened another day."""
    sites, channels = 9, ["DAPI", "GFP", "RFP", "Cy5"]
    planes = microscopy_planes(side, 12)
    visualizer = _viewer(folder, memory_mb, "screen")
    try:
        start_rss = _wait(visualizer, lambda s: True, 30).state.memory_bytes
        total = wells * sites * len(channels)
        with _PeakMemory(visualizer) as memory:
            start = time.perf_counter()
            # as the pipeline runner does: the plate's layout first, then the images
            layout = {"well": wells_of(wells), "site": range(1, sites + 1), "channel": channels}
            visualizer.declare_layout(layout)
            stream_wells(visualizer.save_batch, wells_of(wells), sites, channels, planes)

            def stored(s: Any) -> bool:
                d = s.state.display
                return d.stored + sum(d.unstored.values()) >= total and not d.store_queued_bytes

            status = _wait(visualizer, stored, 7200)
            elapsed = time.perf_counter() - start
        display = status.state.display
        run = Path(display.store_path)
        results = {
            "images": total,
            "gb": total * side * side * 2 / 1e9,
            "seconds": elapsed,
            "mb_per_s": total * side * side * 2 / 1e6 / elapsed,
            "start_rss_mib": start_rss / 2**20,
            "peak_rss_mib": memory.peak / 2**20,
            "budget_mib": memory_mb,
            "stored": display.stored,
            "unstored": dict(display.unstored),
            "dropped": dict(status.dropped),
            "run_gb_on_disk": _folder_bytes(run) / 1e9,
        }
    finally:
        visualizer.stop()
    results["open_s"] = measure_open(run, cold)
    one_well = folder / f"{run.name}-one-well"
    first_well_of(run, one_well)
    results["one_well_open_s"] = measure_open(one_well, cold)  # napari's: the same layers
    results["empty_viewer_s"] = measure_open(None, cold)
    shutil.rmtree(one_well, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    return results


def first_well_of(run: Path, copy: Path) -> None:
    """A run holding only the first well of ``run`` (same plates, layers and display):
    opening it costs what napari costs to show those layers, without the plate's size."""
    from platestream.store import RunStore

    whole, part = RunStore(run), RunStore(copy, title=run.name)
    try:
        items = list(whole.stored_items())
        first = min(location.well for _, location in items)
        for item, location in items:
            plane = whole.read(location) if location.well == first else None
            if plane is not None:
                target, _ = part.locate(item, whole.display_of(location.plate))
                assert target is not None
                part.put(target, plane, lambda ok: None)
    finally:
        part.close()
        whole.close()


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only; else nothing is done and False)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError:
        return False


def measure_open(run: Path | None, cold: bool = True) -> float:
    """``platestream open RUN``: from the command to the viewer answering with its layers.
    ``run`` None: ``platestream viewer start`` of an empty viewer, the baseline (napari's own
    start) measured the same way."""
    from platestream.backend import request_once
    from platestream.schemas import LayersReport, LayersRequest

    port = _free_port()
    if cold:  # as a run opened another day: the plate's files not in RAM
        drop_page_cache()
    start = time.perf_counter()
    # an empty viewer keeps nothing: no run store is made for it
    command = ["viewer", "start", "--store", "memory"] if run is None else ["open", str(run)]
    subprocess.run(
        [sys.executable, "-m", "platestream", *command, "--detach", "--port", str(port)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    try:
        reply = request_once("127.0.0.1", port, LayersRequest(), timeout_s=120)
        assert isinstance(reply.message, LayersReport)
        return time.perf_counter() - start
    finally:
        stop_viewer("127.0.0.1", port, timeout_s=30)


def measure_many(folder: Path, wells: int, side: int = 256, memory_mb: int = 512) -> dict[str, Any]:
    sites, channels = 9, ["DAPI", "GFP", "RFP", "Cy5", "BF"]
    planes = microscopy_planes(side, 16)
    visualizer = _viewer(folder, memory_mb, "many")
    per_well = sites * len(channels)
    marks: list[tuple[int, float]] = []
    try:
        start_rss = _wait(visualizer, lambda s: True, 30).state.memory_bytes
        with _PeakMemory(visualizer) as memory:
            start = time.perf_counter()
            names = wells_of(wells)
            visualizer.declare_layout(
                {"well": names, "site": range(1, sites + 1), "channel": channels}
            )
            tenth = max(1, wells // 10)
            for index, well in enumerate(names):
                items = [
                    ImageItem(
                        {"well": well, "site": s, "channel": c}, 1, "raw", (side, side), "uint16"
                    )
                    for s in range(1, sites + 1)
                    for c in channels
                ]
                arrays = [planes[(index + k) % len(planes)] for k in range(per_well)]
                visualizer.save_batch(arrays, items)
                if index + 1 in (tenth, 2 * tenth, wells - tenth, wells):
                    shown = (index + 1) * per_well
                    _wait(visualizer, lambda s, n=shown: s.state.display.displayed >= n, 3600)
                    marks.append((shown, time.perf_counter() - start))
            status = _wait(visualizer, lambda s: not s.state.display.store_queued_bytes, 3600)
        # the second tenth (the first has the viewer's warm-up: layers, napari) vs the last
        (_, warm_s), (first_n, first_s), (late_n, late_s), (total_n, total_s) = marks
        first_us = (first_s - warm_s) / (first_n - first_n // 2) * 1e6
        last_us = (total_s - late_s) / (total_n - late_n) * 1e6
        display = status.state.display
        return {
            "images": total_n,
            "seconds": total_s,
            "first_tenth_us_per_image": first_us,
            "last_tenth_us_per_image": last_us,
            "last_vs_first": last_us / first_us,
            "start_rss_mib": start_rss / 2**20,
            "peak_rss_mib": memory.peak / 2**20,
            "budget_mib": memory_mb,
            "stored": display.stored,
            "dropped": dict(status.dropped),
        }
    finally:
        visualizer.stop()
        run_dirs = [p for p in folder.iterdir() if p.is_dir() and p.name.endswith("_many")]
        for path in run_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(
    large: bool = False, folder: Path | None = None, cold: bool = True, **sizes: int
) -> dict[str, Any]:
    chosen = {**(LARGE if large else SMALL), **{k: v for k, v in sizes.items() if v}}
    base = Path(tempfile.mkdtemp(prefix="platestream-bench-", dir=folder))
    try:
        results: dict[str, Any] = {"large": large, "disk_mb_per_s": disk_write_speed(base)}
        results["screen"] = measure_screen(base, chosen["screen_wells"], cold=cold)
        results["screen"]["vs_disk"] = results["screen"]["mb_per_s"] / results["disk_mb_per_s"]
        results["many"] = measure_many(base, chosen["many_wells"])
        return results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def render(results: dict[str, Any]) -> str:
    screen, many = results["screen"], results["many"]
    rows = [
        ("disk sequential write (fsynced)", f"{results['disk_mb_per_s']:.0f} MB/s"),
        (f"screen: {screen['images']} images of 1024x1024", f"{screen['gb']:.1f} GB"),
        ("screen: sustained to disk", f"{screen['mb_per_s']:.0f} MB/s"),
        ("screen: / disk speed (target >= 0.5)", f"{screen['vs_disk']:.2f}"),
        ("screen: viewer RSS start", f"{screen['start_rss_mib']:.0f} MiB"),
        ("screen: viewer RSS peak", f"{screen['peak_rss_mib']:.0f} MiB"),
        (
            "screen: peak - start (target <= 1.2 GB = 1144 MiB)",
            f"{screen['peak_rss_mib'] - screen['start_rss_mib']:.0f} MiB",
        ),
        ("screen: run on disk", f"{screen['run_gb_on_disk']:.1f} GB"),
        ("screen: platestream open -> layers", f"{screen['open_s']:.2f} s"),
        ("screen: empty viewer start", f"{screen['empty_viewer_s']:.2f} s"),
        ("screen: open of its first well alone (baseline)", f"{screen['one_well_open_s']:.2f} s"),
        (
            "screen: open - baseline (target < 2 s)",
            f"{screen['open_s'] - screen['one_well_open_s']:.2f} s",
        ),
        (f"many: {many['images']} images of 256x256", f"{many['seconds']:.1f} s"),
        ("many: second tenth, per image", f"{many['first_tenth_us_per_image']:.0f} us"),
        ("many: last tenth, per image", f"{many['last_tenth_us_per_image']:.0f} us"),
        ("many: last / first (flat: ~1)", f"{many['last_vs_first']:.2f}"),
        (
            "many: viewer RSS peak - start",
            f"{many['peak_rss_mib'] - many['start_rss_mib']:.0f} MiB",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.plate_scale")
    parser.add_argument("--large", action="store_true", help="the issue's sizes (long)")
    parser.add_argument("--screen-wells", type=int, help="wells of the 1024 px screen")
    parser.add_argument("--many-wells", type=int, help="wells of the 256 px plate")
    parser.add_argument("--dir", type=Path, help="where runs are written (then removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run(
        args.large, args.dir, screen_wells=args.screen_wells or 0, many_wells=args.many_wells or 0
    )
    return report(results, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
