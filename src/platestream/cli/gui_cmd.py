"""``platestream gui [PLATE]``: the desktop GUI (instance manager and image browser)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def cmd_gui(args: argparse.Namespace) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        print(
            "platestream gui: no display here (DISPLAY is not set); run it on your desktop, "
            "or under xvfb-run to try it headless",
            file=sys.stderr,
        )
        return 1
    if args.plate is not None and not args.plate.is_dir():
        print(f"platestream gui: {args.plate} is not a folder", file=sys.stderr)
        return 1
    from platestream.gui import main

    return main([str(args.plate)] if args.plate is not None else [])


def register(groups: Any) -> None:
    gui = groups.add_parser(
        "gui", help="the desktop GUI: manage viewers, browse a plate and stream images to them"
    )
    gui.add_argument(
        "plate", nargs="?", type=Path, help="a plate folder to open in the image browser"
    )
    gui.set_defaults(func=cmd_gui)
