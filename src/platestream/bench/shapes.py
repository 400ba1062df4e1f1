"""A plate of points and shapes in one message: ``xvfb-run -a python -m platestream.bench.shapes``.

One producer sends N wells (default 2,048), each with a points plane and a shapes plane of
4 polygons, in one batch (2 x N items; the wire allows 4,096) to a real viewer. While the
viewer shows them, a request the GUI thread answers (``wells_failed``, which does not
wait for the display to catch up) is sent again and again; printed: the time until every
image is shown and every polygon given to napari, and the longest wait of that request
(how long the GUI was blocked at most), against the same request on the idle viewer
before the batch (the baseline of the same run).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from platestream.bench import report


def run(wells: int = 2048) -> dict[str, Any]:
    from platestream.backend import request_once
    from platestream.config import NapariStreamingConfig
    from platestream.layering import ImageItem, LayerKind
    from platestream.schemas import WellsFailed
    from platestream.viewer.manager import NapariStreamVisualizer

    from .viewer import _free_port

    port = _free_port()
    rows = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names = [f"{r}{c:02d}" for r in rows for c in range(1, 100)][:wells]
    square = np.array([[0, 0], [0, 6], [6, 6], [6, 0]], float)
    arrays: list[np.ndarray] = []
    targets: list[ImageItem] = []
    for well in names:
        arrays.append(np.array([[3.0, 3.0], [9.0, 9.0]]))
        targets.append(
            ImageItem({"well": well}, 0, "seg", (2, 2), "float64", kind=LayerKind.POINTS)
        )
        arrays.append(np.stack([square + 8 * i for i in range(4)]))
        targets.append(
            ImageItem({"well": well}, 0, "seg", (4, 4, 2), "float64", kind=LayerKind.SHAPES)
        )
    probe = WellsFailed(step_name="probe", wells=("ZZ99",), reason="probe")
    config = NapariStreamingConfig(napari_port=port, delivery="lossless", overview=False)

    def wait_gui() -> float:
        started = time.monotonic()
        request_once("127.0.0.1", port, probe, timeout_s=300)
        return time.monotonic() - started

    with NapariStreamVisualizer(config, title="bench shapes", persistent=False) as viewer:
        viewer.start_viewer(async_mode=False)
        idle = min(wait_gui() for _ in range(5))
        started = time.monotonic()
        viewer.save_batch(arrays, targets)
        longest, pending_seen = 0.0, 0
        while True:
            longest = max(longest, wait_gui())
            status = viewer.status(timeout_s=30)
            if status is None:
                continue
            display = status.state.display
            pending_seen = max(pending_seen, display.shapes_pending)
            if display.displayed + sum(status.dropped.values()) >= len(targets) and (
                display.shapes_pending == 0
            ):
                break
        elapsed = time.monotonic() - started
    return {
        "wells": wells,
        "items": len(targets),
        "polygons": 4 * wells,
        "seconds_to_all_shown": elapsed,
        "gui_wait_idle_ms": idle * 1000,
        "gui_wait_longest_ms": longest * 1000,
        "shapes_pending_max": pending_seen,
    }


def render(results: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{results['wells']} wells of points and shapes ({results['items']} items, "
            f"{results['polygons']} polygons) in one message",
            "  every image shown, every polygon in napari after "
            f"{results['seconds_to_all_shown']:.1f} s",
            f"  GUI-thread request: idle {results['gui_wait_idle_ms']:.0f} ms, "
            f"longest while showing {results['gui_wait_longest_ms']:.0f} ms",
            f"  polygons waiting at most (shapes_pending): {results['shapes_pending_max']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.shapes")
    parser.add_argument("--wells", type=int, default=2048, help="wells (two items each)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    return report(run(args.wells), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
