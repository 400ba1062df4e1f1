"""``platestream layers plan DIR``: the napari layers a plate folder would stream into.

Reads the folder's names, metadata and TIFF headers (no pixels), plans the layers for the
given steps with the display config (defaults, or a TOML file), and prints one row per
layer: name, kind, shape, stacked axes with their labels, dtype and filled planes.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: Any) -> None:
    layers = subparsers.add_parser("layers", help="see how images are laid out into layers")
    commands = layers.add_subparsers(dest="layers_command", metavar="COMMAND")
    commands.required = True
    plan = commands.add_parser(
        "plan",
        help="print the layer table for a plate folder",
        description="Print the napari layers a plate folder would stream into: name, kind, "
        "shape, stacked axes with their labels, dtype and filled planes. Reads file names, "
        "metadata files and TIFF headers, never pixels.",
    )
    plan.add_argument("folder", type=Path, metavar="DIR", help="the plate folder")
    plan.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="display settings: a pipeline file ([pipeline.napari_streaming] and [[steps]]) "
        "or a file of NapariStreamingConfig fields",
    )
    plan.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="[INDEX:]NAME",
        help="a step to plan the plate for (repeatable); default: the config's steps, or input",
    )
    plan.add_argument(
        "--pattern",
        metavar="REGEX",
        help="read file names with this regular expression (named groups: well, site, "
        "channel, z_index, timepoint, or row and column) instead of the built-in conventions",
    )
    plan.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the layer table; 0 on success, 1 for an unreadable plate, 2 for bad options."""
    from platestream.config import ConfigError
    from platestream.layering import FileNameError, PlateMetadataError, RegexParser, plan
    from platestream.pipeline.plate import PlateError, read_plate

    out = out or sys.stdout
    try:
        config, config_steps = load_display_config(args.config)
        steps = parse_steps(args.step) or config_steps or [(0, "input")]
        parsers = [RegexParser(args.pattern)] if args.pattern else None
    except (ConfigError, ValueError, OSError) as err:
        print(f"platestream layers plan: {err}", file=sys.stderr)
        return 2
    try:
        plate = read_plate(args.folder, parsers) if parsers else read_plate(args.folder)
    except (FileNameError, PlateMetadataError, PlateError) as err:
        print(f"platestream layers plan: {err}", file=sys.stderr)
        return 1
    result = plan(plate.items(steps), config)
    print_table(plate, result.state, out)
    return 0


def parse_steps(specs: list[str]) -> list[tuple[int, str]]:
    """``["blur", "3:segment"]`` -> ``[(1, "blur"), (3, "segment")]`` (positions from 1)."""
    steps = []
    for position, spec in enumerate(specs, start=1):
        index, sep, name = spec.partition(":")
        if sep and index.strip().isdigit():
            steps.append((int(index), name.strip()))
        else:
            steps.append((position, spec.strip()))
    if any(not name for _, name in steps):
        raise ValueError("--step needs a name, like --step blur or --step 2:blur")
    return steps


def load_display_config(path: Path | None) -> tuple[Any, list[tuple[int, str]]]:
    """The resolved display config of a TOML file (or the defaults), and its step names."""
    from platestream.config import ConfigError, ConfigLayer, NapariStreamingConfig, resolve

    if path is None:
        return resolve(NapariStreamingConfig, []).value, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None
    pipeline = data.get("pipeline", {})
    table = pipeline.get("napari_streaming", data.get("napari_streaming", None))
    if table is None:
        table = {k: v for k, v in data.items() if k not in ("pipeline", "steps")}
    steps = [(i, s["name"]) for i, s in enumerate(data.get("steps", []), start=1) if "name" in s]
    try:
        layer = ConfigLayer(NapariStreamingConfig(**table), str(path))
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None
    return resolve(NapariStreamingConfig, [layer]).value, steps


def print_table(plate: Any, state: Any, out: TextIO) -> None:
    from platestream.layering import layer_plans

    names = ", ".join(f"{n}={name}" for n, name in sorted(plate.channel_names.items()))
    print(
        f"{plate.root}: {plate.format}, {len(plate.images)} images"
        + (f" ({plate.thumbnails} thumbnails skipped)" if plate.thumbnails else "")
        + (f"; channels {names}" if names else ""),
        file=out,
    )
    rows = [("layer", "kind", "shape", "axes", "dtype", "images")]
    for layer in layer_plans(state):
        axes = " x ".join(_axis_text(axis.label, axis.value_labels) for axis in layer.axes)
        shape = "x".join(str(n) for n in layer.shape)
        filled = f"{layer.filled}/{layer.planes}"
        rows.append((layer.name, layer.kind.value, shape, axes or "-", layer.dtype or "-", filled))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)
        if number == 0:
            print("  ".join("-" * width for width in widths), file=out)
    print(f"{len(rows) - 1} layers", file=out)


def _axis_text(label: str, values: tuple[str, ...]) -> str:
    """``Site[001,002]``, or ``Well[384: A01..P24]`` when the values would not fit a row."""
    if len(values) <= 4:
        return f"{label}[{','.join(values)}]"
    return f"{label}[{len(values)}: {values[0]}..{values[-1]}]"
