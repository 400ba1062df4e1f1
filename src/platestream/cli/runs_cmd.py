"""``platestream runs list | rm`` and ``platestream open RUN``: the runs viewers kept on disk.

A run is the OME-Zarr folder a viewer wrote (one per viewer start, in ``store_dir``).
Nothing is ever removed unless ``runs rm`` is asked to. ``open`` starts a viewer on a run:
it shows what the run holds, lazily, and goes on writing what producers send to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _store_dir(args: argparse.Namespace) -> Path:
    from platestream.store import store_dir_of

    setting = args.store_dir or ""
    if not setting and getattr(args, "config", None):
        from platestream.pipeline import load_pipeline_file

        section = load_pipeline_file(args.config).config.napari_streaming
        from platestream.config import is_unset

        if not is_unset(section.store_dir):
            setting = section.store_dir
    return store_dir_of(setting)


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024  # type: ignore[assignment]
    return ""


def cmd_list(args: argparse.Namespace) -> int:
    from platestream.store import list_runs

    store_dir = _store_dir(args)
    runs = list_runs(store_dir)
    if args.json:
        rows = [
            {
                "name": r.name,
                "path": str(r.path),
                "title": r.title,
                "created": r.created,
                "plates": list(r.plates),
                "bytes": r.size_bytes,
            }
            for r in runs
        ]
        print(json.dumps(rows, indent=1))
        return 0
    if not runs:
        print(f"no runs in {store_dir}")
        return 0
    print(f"runs in {store_dir}:")
    for run in runs:
        plates = ", ".join(run.plates) or "(empty)"
        print(f"  {run.name}  {run.created}  {run.title!r}  {_size(run.size_bytes)}  {plates}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from platestream.store import remove_run, resolve_run

    path = resolve_run(args.run, _store_dir(args))
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"platestream runs rm: add --yes to remove {path}", file=sys.stderr)
            return 1
        answer = input(f"remove {path} and everything in it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    freed = remove_run(path)
    print(f"removed {path} ({_size(freed)})")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    from platestream.store import resolve_run
    from platestream.viewer.manager import Holder, inspect

    from .viewer_cmd import start_viewer

    path = resolve_run(args.run, _store_dir(args))
    port = args.port or 5555
    for candidate in range(port, port + 20):  # a free port: a running viewer shows its own
        if inspect(candidate, args.host).holder is Holder.FREE:
            break
    else:
        print(f"platestream open: no free port in {port}..{port + 19}", file=sys.stderr)
        return 1
    args.port = candidate
    args.store = "disk"
    if not args.title:
        from platestream.store import read_run_info

        args.title = str(read_run_info(path).get("title") or path.name)
    return start_viewer(args, ["--run", str(path)])


def _store_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-dir", help="the folder of runs (default: the user's data dir)")
    parser.add_argument("--config", type=Path, help="a pipeline TOML whose store_dir applies")


def register(groups: Any) -> None:
    runs = groups.add_parser("runs", help="the runs viewers kept on disk: list, rm")
    commands = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    commands.required = True
    listing = commands.add_parser("list", help="every run: name, date, title, size, plates")
    _store_dir_option(listing)
    listing.add_argument("--json", action="store_true", help="one JSON list")
    listing.set_defaults(func=cmd_list)
    remove = commands.add_parser("rm", help="remove one run (asks first)")
    remove.add_argument("run", help="a run folder, or its name (or a unique prefix)")
    remove.add_argument("--yes", action="store_true", help="do not ask")
    _store_dir_option(remove)
    remove.set_defaults(func=cmd_rm)

    opening = groups.add_parser(
        "open", help="open a run in a viewer (and continue it when producers stream to it)"
    )
    opening.add_argument("run", help="a run folder, or its name (or a unique prefix)")
    opening.add_argument("--port", type=int, help="data port (default: the first free from 5555)")
    opening.add_argument("--title", help="window title (default: the run's)")
    opening.add_argument("--host", default="127.0.0.1", help="address to bind")
    opening.add_argument("--detach", action="store_true", help="in the background")
    opening.add_argument("--headless", action="store_true", help="on a private Xvfb")
    opening.add_argument("--memory-mb", type=int, help="RAM for planes (default 2048)")
    _store_dir_option(opening)
    opening.set_defaults(func=cmd_open, on_conflict="fail", store=None)
