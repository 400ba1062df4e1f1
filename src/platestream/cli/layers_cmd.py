"""``platestream layers plan DIR``: the napari layers a plate folder would stream into.

Reads the folder's names, metadata and TIFF headers (no pixels), plans the layers for the
given steps with the display config (defaults, or a TOML file), and prints one row per
layer: name, kind, shape, stacked axes with their labels, dtype and filled planes.
"""

from __future__ import annotations

import argparse
import sys
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
        help="display settings: a pipeline file, its [pipeline.napari_streaming] table and "
        "its [[steps]] (a file of display fields alone puts them under "
        "[pipeline.napari_streaming])",
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
    from platestream.layering import FileNameError, PlateMetadataError, RegexParser
    from platestream.pipeline import PlateError, read_plate, skipped_report

    out = out or sys.stdout
    try:
        groups = planned_streams(args.config, parse_steps(args.step))
        parsers = [RegexParser(args.pattern)] if args.pattern else None
    except (ConfigError, ValueError, OSError) as err:
        print(f"platestream layers plan: {err}", file=sys.stderr)
        return 2
    try:
        plate = read_plate(args.folder, parsers) if parsers else read_plate(args.folder)
    except (FileNameError, PlateMetadataError, PlateError) as err:
        print(f"platestream layers plan: {err}", file=sys.stderr)
        return 1
    if plate.skipped:
        print(skipped_report(plate), file=sys.stderr)  # a warning: the plan goes on
    print_table(plate, plan_groups(plate, groups), out)
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


Group = tuple[Any, list[tuple[int, str, Any]]]  # (display config, [(index, name, kind)])


def planned_streams(path: Path | None, steps: list[tuple[int, str]]) -> list[Group]:
    """Streams grouped by their resolved display config, from a pipeline file or --step.

    With a pipeline file every step/function is planned with its own resolved config, as
    the viewer will; ``--step`` names replace the file's steps (with its pipeline config).
    """
    from platestream.config import (
        CLASSES,
        NapariStreamingConfig,
        load_pipeline,
        resolve,
        resolve_file,
    )
    from platestream.layering import LayerKind
    from platestream.pipeline import file_streams

    if path is None:
        default = resolve(NapariStreamingConfig, []).value
        return [(default, [(i, n, LayerKind.IMAGE) for i, n in steps or [(0, "input")]])]
    loaded = load_pipeline(path, CLASSES)
    if steps:
        config = resolve_file(loaded, CLASSES).value.napari_streaming
        return [(config, [(i, n, LayerKind.IMAGE) for i, n in steps])]
    groups: dict[Any, list[tuple[int, str, Any]]] = {}
    for stream in file_streams(loaded):
        kind = LayerKind(stream.output.value)
        groups.setdefault(stream.config.napari_streaming, []).append(
            (stream.step_index, stream.name, kind)
        )
    if not groups:
        config = resolve_file(loaded, CLASSES).value.napari_streaming
        groups[config] = [(0, "input", LayerKind.IMAGE)]
    return list(groups.items())


def plan_groups(plate: Any, groups: list[Group]) -> list[Any]:
    """The layer plans of every group, in stream order."""
    import dataclasses

    from platestream.layering import layer_plans, plan

    layers: list[Any] = []
    for config, streams in groups:
        items = []
        for index, name, kind in streams:
            for item in plate.items([(index, name)]):
                items.append(dataclasses.replace(item, kind=kind) if item.kind != kind else item)
        layers.extend(layer_plans(plan(items, config).state))
    return layers


def print_table(plate: Any, layers: list[Any], out: TextIO) -> None:
    names = ", ".join(f"{n}={name}" for n, name in sorted(plate.channel_names.items()))
    print(
        f"{plate.root}: {plate.format}, {len(plate.images)} images"
        + (f" ({plate.thumbnails} thumbnails skipped)" if plate.thumbnails else "")
        + (f"; channels {names}" if names else ""),
        file=out,
    )
    rows = [("layer", "kind", "shape", "axes", "dtype", "images")]
    for layer in layers:
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
