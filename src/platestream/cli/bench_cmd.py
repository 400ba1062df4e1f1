"""``platestream bench``: run every benchmark and write the figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_bench(args: argparse.Namespace) -> int:
    from platestream.bench import suite
    from platestream.viewer.manager import needs_display, start_xvfb

    xserver = None
    displayed = {"viewer", "plate_scale"}
    if needs_display() and (not args.only or displayed & set(args.only)):
        import os

        xserver = start_xvfb()  # the viewer benchmark needs napari on a screen
        os.environ["DISPLAY"] = xserver.display
    try:
        results = suite.run_all(args.only, large=args.large)
    finally:
        if xserver is not None:
            xserver.stop()
    table = suite.write(results, args.json, args.markdown)
    print(table)
    print(f"figures: {args.json}, table: {args.markdown}")
    if args.update_docs:
        suite.update_docs(args.update_docs, table)
        print(f"updated {args.update_docs}")
    return 0


def register(groups: Any) -> None:
    bench = groups.add_parser("bench", help="run every benchmark; write JSON and markdown")
    bench.add_argument(
        "--only",
        nargs="+",
        choices=["planning", "transport", "viewer", "pipeline", "plate_scale"],
        help="run only these",
    )
    bench.add_argument(
        "--large",
        action="store_true",
        help="plate_scale at the issue's sizes: a 29 GB screen and a 69,120-image plate "
        "(tens of minutes, needs about 20 GB of disk)",
    )
    bench.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results.json"),
        help="file for every figure as JSON (default: bench-results.json)",
    )
    bench.add_argument(
        "--markdown",
        type=Path,
        default=Path("bench-results.md"),
        help="file for the summary table (default: bench-results.md)",
    )
    bench.add_argument(
        "--update-docs",
        type=Path,
        nargs="?",
        const=Path("docs/benchmarks.md"),
        help="put the table into docs/benchmarks.md (or the file given)",
    )
    bench.set_defaults(func=cmd_bench)
