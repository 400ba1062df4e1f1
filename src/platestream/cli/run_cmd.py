"""``platestream run PIPELINE.toml --plate DIR`` and ``platestream demo``.

Both start the viewers the pipeline streams to (in the background: the pipeline does not
wait for napari to start, its workers wait at most a budget for each viewer's handshake),
run the pipeline over the plate with a progress line, print a summary, and exit non-zero if
a well failed. Without a display the viewer runs on a private Xvfb; the demo then writes a
snapshot PNG and stops the viewer, since nobody could look at it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEMO_DIR = Path("platestream-demo")


#: ``platestream run``'s exit status when every well ran but some files were skipped
#: (1 is for failed wells).
SKIPPED_FILES = 2


def execute(pipeline: Any, plate_dir: Path, args: argparse.Namespace) -> int:
    from platestream._run import ViewerSession
    from platestream.pipeline import (
        Progress,
        RunOptions,
        pipeline_streams,
        read_plate,
        run_pipeline,
        skipped_report,
        summary,
        viewer_configs,
        well_tasks,
    )
    from platestream.viewer.manager import needs_display

    pipeline.check_functions()
    plate = read_plate(plate_dir)
    if plate.skipped:
        print(skipped_report(plate), file=sys.stderr)
    configs = viewer_configs(pipeline_streams(pipeline)) if not args.no_stream else []
    keep = args.keep if args.keep is not None else not needs_display()
    session = ViewerSession()
    if configs and not args.no_viewer:
        session = ViewerSession.start(configs, f"platestream: {pipeline.name}", keep)
    try:
        wells = len(well_tasks(plate, pipeline, [], RunOptions()))
        progress = Progress(wells)
        options = RunOptions(
            workers=args.workers or 0,
            output_dir=str(args.output or ""),
            stream=not args.no_stream,
            connect_timeout_s=60.0 if session.viewers else 0.0,
            executor=args.executor,
            scheduler=args.scheduler,
        )
        result = run_pipeline(pipeline, plate, options, on_result=progress.update)
        print(summary(result.wells, result.elapsed_s))
        for failure in result.failures:
            print(failure.details, file=sys.stderr)
        _finish(session, args, result, keep)
    finally:
        if not keep:
            session.stop()
    if result.exit_code == 0 and plate.skipped:
        print(f"finished, but {len(plate.skipped)} image file(s) were skipped", file=sys.stderr)
        return SKIPPED_FILES
    return result.exit_code


def _finish(session: Any, args: argparse.Namespace, result: Any, keep: bool) -> None:
    """Each viewer: wait until it accounted for its own share of the run (shown, or
    dropped and counted), say what it dropped, take the snapshot."""
    snapshot = args.snapshot
    problems = session.wait(result)
    for port, problem in problems.items():
        print(f"viewer on port {port}: {problem}", file=sys.stderr)
    for index, viewer in enumerate(session.viewers):
        if not viewer.wait_ready(0.0):  # it never started: nothing to ask or picture
            continue
        status = viewer.status()
        if status is not None and status.dropped:  # what the viewer could not show, and why
            drops = ", ".join(f"{n} {reason}" for reason, n in sorted(status.dropped.items()))
            print(f"viewer on port {viewer.port} dropped: {drops}", file=sys.stderr)
        if snapshot:
            path = Path(snapshot)
            if index:
                path = path.with_name(f"{path.stem}_{viewer.port}{path.suffix}")
            viewer.snapshot(path)
            print(f"snapshot of the viewer on port {viewer.port}: {path}")
    if session.viewers and keep:
        ports = ", ".join(str(v.port) for v in session.viewers)
        print(f"the viewer stays open (port {ports}); stop it with: platestream viewer stop PORT")


def cmd_run(args: argparse.Namespace) -> int:
    from platestream.config import ConfigError
    from platestream.pipeline import load_pipeline_file

    try:
        pipeline = load_pipeline_file(args.pipeline)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    return execute(pipeline, Path(args.plate), args)


def cmd_demo(args: argparse.Namespace) -> int:
    from platestream.pipeline import DEMO_PLATE, SyntheticPlate, demo_pipeline, write_plate

    out = Path(args.out)
    plate = SyntheticPlate(
        name=DEMO_PLATE.name,
        rows=args.rows,
        columns=args.columns,
        sites=args.sites,
        size=args.size,
    )
    plate_dir = out / "plate"
    print(
        f"writing a synthetic plate: {len(plate.wells)} wells x {len(plate.channels)} "
        f"channels ({', '.join(plate.channels)}) x {plate.sites} sites, {plate.size}x{plate.size}"
    )

    def written(done: int, wells: int) -> None:
        end = "\n" if done == wells else ""
        print(f"\r  {done}/{wells} wells written", end=end, flush=True)

    write_plate(plate, plate_dir, progress=written)
    args.output = args.output or out / "outputs"
    args.snapshot = args.snapshot or out / "snapshot.png"
    pipeline = demo_pipeline(port=args.port, workers=args.workers or 0)
    if args.config:  # its [pipeline.napari_streaming] settings apply to the demo
        pipeline = with_streaming_settings(pipeline, args.config)
    status = execute(pipeline, plate_dir, args)
    print(f"plate: {plate_dir}\noutputs: {args.output}")
    return status


def with_streaming_settings(pipeline: Any, path: Path) -> Any:
    """``pipeline`` with the fields a pipeline file's ``[pipeline.napari_streaming]`` sets
    laid over its own (what the file leaves unset stays the demo's)."""
    import dataclasses

    from platestream.config import is_unset
    from platestream.pipeline import load_pipeline_file

    section = load_pipeline_file(path).config.napari_streaming
    values = {
        f.name: getattr(section, f.name)
        for f in dataclasses.fields(section)
        if not is_unset(getattr(section, f.name))
    }
    streaming = dataclasses.replace(pipeline.config.napari_streaming, **values)
    config = dataclasses.replace(pipeline.config, napari_streaming=streaming)
    return dataclasses.replace(pipeline, config=config)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where wells run: a process pool here (local), or Dask distributed tasks (dask)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default="",
        help="--executor dask: the scheduler to use, e.g. tcp://host:8786 (default: a "
        "LocalCluster of one worker per core, for this run)",
    )
    parser.add_argument("--output", type=Path, help="write every step's output as TIFF here")
    parser.add_argument("--snapshot", type=Path, help="save a PNG of each viewer at the end")
    parser.add_argument("--no-stream", action="store_true", help="turn streaming off")
    parser.add_argument(
        "--no-viewer",
        action="store_true",
        help="stream, but start no viewer (one may be running already)",
    )
    parser.add_argument(
        "--keep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="leave the viewer open at the end (default: yes with a display, "
        "no on a headless machine)",
    )


def register(groups: Any) -> None:
    run = groups.add_parser("run", help="run a pipeline file over a plate, streaming to napari")
    run.add_argument("pipeline", type=Path, help="pipeline TOML file")
    run.add_argument("--plate", type=Path, required=True, help="the plate folder")
    _common(run)
    run.set_defaults(func=cmd_run)

    demo = groups.add_parser("demo", help="a synthetic plate through a 3-step pipeline, live")
    demo.add_argument(
        "--out",
        type=Path,
        default=DEMO_DIR,
        help=f"where plate, outputs and snapshot go (default: {DEMO_DIR})",
    )
    demo.add_argument(
        "--rows", type=int, default=4, help="plate rows of the demo plate (default 4)"
    )
    demo.add_argument(
        "--columns", type=int, default=6, help="plate columns of the demo plate (default 6)"
    )
    demo.add_argument("--sites", type=int, default=4, help="sites per well (default 4)")
    demo.add_argument("--size", type=int, default=512, help="image side in pixels")
    demo.add_argument("--port", type=int, default=5555, help="the viewer's data port")
    demo.add_argument(
        "--config",
        type=Path,
        help="a pipeline TOML file whose [pipeline.napari_streaming] settings apply "
        "(store, store_dir, viewer_memory_mb, delivery...)",
    )
    _common(demo)
    demo.set_defaults(func=cmd_demo)
