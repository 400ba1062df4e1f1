"""Plate overview benchmark: ``xvfb-run -a python -m platestream.bench.overview``.

Measures, each against a baseline of the same run:

- ``memory``: the overview of a 384-well and a 1536-well plate, 9 sites and 4 channels,
  at 64 px tiles and at the default tile: MB per channel (its canvas, and its share of the
  RGB picture napari shows) (Squid's napari plate view, the
  best published figure we found, holds about 5 MB per channel);
- ``per_image``: a real napari viewer in this process, fed by a real receiver, streams
  96 wells x 4 sites x 3 channels of 1024 x 1024 uint16 into a disk store with the
  overview on; the time spent putting images into the overview (shrink, blit, and its
  redraws) against the time spent writing the same images into their detailed layers
  (copy, plane source, napari's updates), both summed over the plate;
- ``on_off``: the viewer benchmark's 24-well plate (4 channels x 4 sites of 1024 x 1024)
  and a 96-well plate of 512 x 512 streamed into viewer processes with the overview on
  and off: the wall time ratio, best of 2 each (the two alternate).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from platestream.bench import report
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.store import row_name

from .plate_scale import microscopy_planes, stream_wells
from .viewer import _free_port, _wait, measure_plate

CHANNELS = ["DAPI", "GFP", "RFP", "Cy5"]


def wells_of(rows: int, columns: int) -> list[str]:
    return [f"{row_name(r)}{c + 1:02d}" for r in range(rows) for c in range(columns)]


def measure_memory(tile: int) -> dict[str, float]:
    """MB per channel of the overview of a 384- and a 1536-well plate (9 sites)."""
    from platestream.viewer.layer_model import Overviews

    found = {}
    for name, (rows, columns) in {"384": (16, 24), "1536": (32, 48)}.items():
        overviews = Overviews(tile=tile, max_side=4096)
        overviews.declare({"well": wells_of(rows, columns), "site": list(range(1, 10))})
        plane = np.zeros((1024, 1024), np.uint16)
        for channel in CHANNELS:
            item = ImageItem(
                {"well": "A01", "site": 1, "channel": channel}, 1, "raw", (1024, 1024), "uint16"
            )
            overviews.add(item, plane)
        plate = overviews.plates[(1, "raw")]
        layout = plate.geometry
        assert layout is not None
        # and the RGB picture napari shows (process._overview: the plate and its labels)
        margin = max(12, layout.pitch // 2)
        picture = (layout.shape[0] + margin) * (layout.shape[1] + margin) * 3
        found[name] = (overviews.nbytes + picture) / len(CHANNELS) / 1e6
        found[f"{name}_tile"] = plate.geometry.tile if plate.geometry else 0
    return found


class _Clock:
    """Sums the CPU time the calling thread spends in the wrapped callables (the GUI
    thread's own work: waiting for the GIL held by the receive and store threads of the
    same process does not count)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.thread_time() - start

        return timed


def measure_per_image(wells: int = 96, side: int = 1024) -> dict[str, float]:
    import napari
    from qtpy.QtWidgets import QApplication

    from platestream.backend import NapariStreamingBackend, Receiver, ReceiverOptions
    from platestream.config import resolve_current
    from platestream.viewer.layer_model import Overviews, open_source
    from platestream.viewer.process import assemble

    sites, channels = 4, CHANNELS[:3]
    planes = microscopy_planes(side, 12)
    names = wells_of(8, 12)[:wells]
    with tempfile.TemporaryDirectory(prefix="platestream-bench-") as runs:
        viewer = napari.Viewer(title="overview per image", show=True)
        receiver = Receiver(ReceiverOptions(port=0)).start()
        source: Any = open_source("disk", runs, "overview", "lz4", 2048)
        overviews = Overviews()
        pump, _caption = assemble(viewer, receiver, "overview", source, overviews)
        clock = _Clock()
        store = pump.plans.store
        overviews.add = clock.wrap("overview_add", overviews.add)  # type: ignore[method-assign]
        store.apply = clock.wrap("layers_apply", store.apply)
        pump.applier.flush = clock.wrap("napari_flush", pump.applier.flush)
        pump.overview.update = clock.wrap("overview_redraw", pump.overview.update)
        pump.after_flush = pump.overview.update
        config = NapariStreamingConfig(napari_port=receiver.data_port, delivery="lossless")
        backend = NapariStreamingBackend(resolve_current(config).value)
        application: Any = QApplication.instance()

        def pump_events(_: int) -> None:
            application.processEvents()  # the viewer shows what came while we sent

        total = wells * sites * len(channels)
        try:
            backend.declare_layout(
                {"well": names, "site": list(range(1, sites + 1)), "channel": channels}
            )
            stream_wells(backend.save_batch, names, sites, channels, planes, pump_events)
            deadline = time.monotonic() + 600
            while pump.stats.displayed < total and time.monotonic() < deadline:
                application.processEvents()
            pump.overview.update(force=True)
            seconds = dict(clock.seconds)
        finally:
            backend.close()
            pump.close()
            receiver.close()
            source.close()
            viewer.close()
    overview = seconds.get("overview_add", 0.0) + seconds.get("overview_redraw", 0.0)
    detail = (
        seconds.get("layers_apply", 0.0)
        - seconds.get("overview_add", 0.0)
        + seconds.get("napari_flush", 0.0)
    )
    return {
        "images": total,
        "overview_us_per_image": overview / total * 1e6,
        "shrink_blit_us_per_image": seconds.get("overview_add", 0.0) / total * 1e6,
        "redraw_us_per_image": seconds.get("overview_redraw", 0.0) / total * 1e6,
        "detail_us_per_image": detail / total * 1e6,
        "ratio": overview / detail if detail else float("nan"),
    }


def _plate_96(visualizer: Any, side: int = 512) -> float:
    sites, channels = 4, CHANNELS[:3]
    planes = microscopy_planes(side, 12)
    names = wells_of(8, 12)
    visualizer.clear()
    before = _wait(visualizer, lambda s: s.state.display.store_queued_bytes == 0, 600)
    shown = before.state.display.displayed
    start = time.perf_counter()
    visualizer.declare_layout(
        {"well": names, "site": list(range(1, sites + 1)), "channel": channels}
    )
    stream_wells(visualizer.save_batch, names, sites, channels, planes)
    total = len(names) * sites * len(channels)
    _wait(visualizer, lambda s: s.state.display.displayed >= shown + total, 600)
    return time.perf_counter() - start


def measure_on_off(rounds: int = 2) -> dict[str, float]:
    from platestream.viewer.manager import NapariStreamVisualizer

    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="platestream-bench-") as runs:
        viewers = {}
        for mode in ("on", "off"):
            config = NapariStreamingConfig(
                napari_port=_free_port(),
                delivery="lossless",
                lossless_budget_s=600.0,
                store_dir=runs,
                overview=mode == "on",
            )
            visualizer = NapariStreamVisualizer(config, title=f"overview {mode}", persistent=False)
            visualizer.start_viewer(async_mode=False)
            if visualizer.pong is None:
                raise RuntimeError(f"the viewer did not start: {visualizer.error}")
            viewers[mode] = visualizer
        try:
            for _ in range(rounds):
                for mode, visualizer in viewers.items():
                    times.setdefault(f"24_{mode}", []).append(measure_plate(visualizer, 1024, 24))
                    times.setdefault(f"96_{mode}", []).append(_plate_96(visualizer))
        finally:
            for visualizer in viewers.values():
                visualizer.stop()
    best = {key: min(values) for key, values in times.items()}
    best["24_ratio"] = best["24_on"] / best["24_off"]
    best["96_ratio"] = best["96_on"] / best["96_off"]
    return best


def run(rounds: int = 2) -> dict[str, Any]:
    return {
        "memory_64": measure_memory(64),
        "memory_default": measure_memory(NapariStreamingConfig.specs()["overview_tile_px"].default),
        "per_image": measure_per_image(),
        "on_off": measure_on_off(rounds),
    }


def render(results: dict[str, Any]) -> str:
    m64, mdefault = results["memory_64"], results["memory_default"]
    per, on_off = results["per_image"], results["on_off"]
    rows = [
        (
            "overview, 384 wells x 9 sites, 64 px tiles, per channel (target <= 5 MB)",
            f"{m64['384']:.2f} MB",
        ),
        (
            f"overview, 1536 wells, 64 px tiles ({m64['1536_tile']} px used), per channel",
            f"{m64['1536']:.2f} MB",
        ),
        (
            f"overview, 384 wells, default tiles ({mdefault['384_tile']} px), per channel",
            f"{mdefault['384']:.2f} MB",
        ),
        (
            f"overview, 1536 wells, default tiles ({mdefault['1536_tile']} px), per channel",
            f"{mdefault['1536']:.2f} MB",
        ),
        (
            f"per image into the overview ({per['images']} images of 1024 px)",
            f"{per['overview_us_per_image']:.0f} us",
        ),
        ("  of which shrink + blit", f"{per['shrink_blit_us_per_image']:.0f} us"),
        ("  of which redraws (shared)", f"{per['redraw_us_per_image']:.0f} us"),
        ("per image into its detailed layer (baseline)", f"{per['detail_us_per_image']:.0f} us"),
        ("overview / detailed (target <= 0.2)", f"{per['ratio']:.3f}"),
        ("24-well plate, overview on", f"{on_off['24_on']:.2f} s"),
        ("24-well plate, overview off (baseline)", f"{on_off['24_off']:.2f} s"),
        ("24-well plate: on / off (target <= 1.1)", f"{on_off['24_ratio']:.3f}"),
        ("96-well plate of 512 px, overview on", f"{on_off['96_on']:.2f} s"),
        ("96-well plate of 512 px, overview off (baseline)", f"{on_off['96_off']:.2f} s"),
        ("96-well plate: on / off (target <= 1.1)", f"{on_off['96_ratio']:.3f}"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value:>12}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.overview")
    parser.add_argument("--rounds", type=int, default=2, help="on/off rounds (best of)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return report(run(args.rounds), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
