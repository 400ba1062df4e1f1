"""``platestream config show | validate | schema | init``."""

from __future__ import annotations

import argparse
import sys
from enum import Enum
from pathlib import Path
from typing import Any

STARTER = """#:schema ./{schema}
# A platestream pipeline file. Every setting may be given at three levels:
# [pipeline.napari_streaming] for the whole run, [steps.napari_streaming] for one step,
# and [steps.functions.napari_streaming] for one function. The most specific level wins;
# anything left out comes from the level above, then from platestream's defaults.
# `platestream config show {name} --step blur` prints every value and where it came from.

[pipeline]
name = "nuclei_qc"
description = "Background subtraction, smoothing and a nuclei mask, streamed to napari."

[pipeline.napari_streaming]
enabled = true            # stream every step's images to napari while the pipeline runs
persistent = true         # keep the viewer open after the run
napari_host = "localhost" # a remote host streams inline frames instead of shared memory
napari_port = 5555        # the control port is this + 1000
colormap = "gray"
channel_colormaps = {{ DAPI = "blue", GFP = "green", RFP = "red" }}
channel_mode = "slice"    # one layer per channel
site_mode = "stack"       # sites become a slider of each layer
well_mode = "stack"

[[steps]]
name = "background"

[[steps.functions]]
function = "skimage.morphology:white_tophat"
params = {{ footprint = 15 }}

[[steps]]
name = "blur"

[steps.napari_streaming]
colormap = "viridis"      # this step only

[[steps.functions]]
function = "skimage.filters:gaussian"
params = {{ sigma = 2.0, preserve_range = true }}

[[steps]]
name = "mask"

[[steps.functions]]
function = "skimage.filters:threshold_otsu"

[steps.functions.napari_streaming]
replace_layers = true     # each run replaces this function's mask layers
"""


def _shown(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if hasattr(value, "items"):
        inner = ", ".join(f"{k} = {_shown(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def _table(rows: list[tuple[str, str, str]]) -> str:
    headers = ("field", "value", "from")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _load(path: str, classes: Any = None) -> Any:
    from platestream.config import CLASSES, ConfigError, load_pipeline

    try:
        return load_pipeline(path, classes or CLASSES)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def show_table(loaded: Any, classes: Any, step: str | None, function: str | None) -> str:
    """The ``config show`` report: every resolved field, its value and where it came from."""
    from platestream.config import resolve_file

    resolved = resolve_file(loaded, classes, step, function)
    scope = f"pipeline {loaded.spec.pipeline.name or 'pipeline'!r}"
    if step:
        scope += f", step {step!r}"
    if function:
        scope += f", function {function!r}"
    found = list(resolved.rows())
    rows = [(path, _shown(value), origin) for path, value, origin in found]
    notes = shadowed(found)
    text = f"{loaded.file}: resolved config for {scope}\n\n{_table(rows)}"
    return text + "".join(f"\n\nnote: {note}" for note in notes)


def shadowed(rows: list[tuple[str, Any, str]]) -> list[str]:
    """Fields whose value a field of higher precedence hides, said in words. Precedence
    of a layer's colormap: ``channel_colormaps`` (for the channels it names), then
    ``colormap``, then the layer kind's default (gray; labels have their own)."""
    values = {path: (value, origin) for path, value, origin in rows}
    notes = []
    for path, (value, origin) in values.items():
        if not path.endswith(".colormap") or origin == "default":
            continue
        channel_maps, _ = values.get(path.removesuffix("colormap") + "channel_colormaps", ({}, ""))
        if channel_maps:
            names = ", ".join(str(name) for name in channel_maps)
            notes.append(
                f"{path} = {_shown(value)} ({origin}) does not show for channels {names}: "
                "channel_colormaps comes first (channel_colormaps, then colormap, then the "
                "default); it colors only the channels channel_colormaps does not name"
            )
    return notes


def cmd_show(args: argparse.Namespace) -> int:
    from platestream.config import CLASSES, ConfigError

    loaded = _load(args.file)
    if loaded is None:
        return 1
    try:
        print(show_table(loaded, CLASSES, args.step, args.function))
    except ConfigError as err:
        print(f"{args.file}: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from platestream.config import function_label

    loaded = _load(args.file)
    if loaded is None:
        return 1
    spec = loaded.spec
    if not spec.steps:
        print(
            f"{args.file}: has no steps: add a [[steps]] table with its [[steps.functions]] "
            "(platestream config init writes an example)",
            file=sys.stderr,
        )
        return 1
    functions = sum(len(step.functions) for step in spec.steps)
    steps = ", ".join(
        f"{s.name} ({', '.join(function_label(f) for f in s.functions) or 'no functions'})"
        for s in spec.steps
    )
    print(f"{args.file}: ok: {len(spec.steps)} steps, {functions} functions: {steps}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from platestream.schemas import pipeline_file_schema, render

    sys.stdout.write(render(pipeline_file_schema()))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from platestream.config import SCHEMA_FILE_NAME
    from platestream.schemas import pipeline_file_schema, render

    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"{path}: exists; not overwritten (use --force)", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER.format(schema=SCHEMA_FILE_NAME, name=path.name), encoding="utf-8")
    schema = path.parent / SCHEMA_FILE_NAME
    schema.write_text(render(pipeline_file_schema()), encoding="utf-8")
    print(f"wrote {path} and its schema {schema}")
    return 0


def register(groups: Any) -> None:
    config = groups.add_parser("config", help="show, check and create pipeline config files")
    commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    commands.required = True

    show = commands.add_parser("show", help="every resolved field, its value and its origin")
    show.add_argument("file", help="pipeline TOML file")
    show.add_argument("--step", help="resolve for this step")
    show.add_argument("--function", help="resolve for this function of --step")
    show.set_defaults(func=cmd_show)

    validate = commands.add_parser("validate", help="report every error; exit 1 if any")
    validate.add_argument("file", help="pipeline TOML file")
    validate.set_defaults(func=cmd_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of pipeline files")
    schema.set_defaults(func=cmd_schema)

    init = commands.add_parser("init", help="write a commented starter pipeline file")
    init.add_argument("path", help="where to write it")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=cmd_init)
