"""Running a pipeline with its viewers: what ``platestream run`` does, as a library.

``run_pipeline`` (exported as ``platestream.run_pipeline``) starts or reuses the viewer of
every streaming config the pipeline names, runs it over the plate (workers wait at most a
budget for each viewer's handshake), waits until each viewer accounted for its own share
of what was streamed, and stops the viewers it started unless they are kept. The CLI
builds on ``ViewerSession``; ``platestream.pipeline.run_pipeline`` is the engine alone,
which streams to whatever viewers are there.

Lives above ``platestream.pipeline`` and ``platestream.viewer`` (neither imports the
other); imports them on first use, as the front door does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: The longest wait for a viewer to start, or to account for its share after a run.
VIEWER_WAIT_S = 120.0


@dataclass
class ViewerSession:
    """The viewers a run streams to: started (or reused) before it, waited for after it."""

    viewers: list[Any] = field(default_factory=list)
    # port -> images the viewer had accounted for (shown or dropped) before this run
    accounted_before: dict[int, int] = field(default_factory=dict)

    @classmethod
    def start(
        cls, configs: list[Any], title: str, keep: bool, headless_ok: bool = True
    ) -> ViewerSession:
        """A viewer per local config (``keep``: they outlive this process, where their
        config is persistent). Without a display each runs on an X server of its own,
        which ends with it."""
        from platestream.backend import is_local
        from platestream.viewer.manager import NapariStreamVisualizer, needs_display

        session = cls()
        local = [c for c in configs if is_local(c.napari_host)]
        headless = bool(local) and needs_display()
        if headless and not headless_ok:
            raise SystemExit("no display: set DISPLAY, or run with --headless")
        for config in local:
            # the pipeline streams to the configured port, so a port held by another
            # program is an error here, not a reason to move
            viewer = NapariStreamVisualizer(
                config,
                title=title,
                persistent=keep and config.persistent,
                on_conflict="fail",
                headless=headless,
            )
            status = viewer.status(timeout_s=1.0)  # a viewer already there: what it has
            before = status.state.display.displayed + sum(status.dropped.values()) if status else 0
            session.accounted_before[viewer.port] = before
            viewer.start_viewer(async_mode=True)
            session.viewers.append(viewer)
        return session

    def wait(self, result: Any, timeout_s: float = VIEWER_WAIT_S) -> dict[int, str]:
        """Wait until each viewer accounted for its own share of ``result`` (a RunResult):
        shown, or dropped and counted (a held request each, no polling). What went wrong,
        by port (empty: every viewer has its share)."""
        problems: dict[int, str] = {}
        for viewer in self.viewers:
            if not viewer.wait_ready(timeout_s):
                problems[viewer.port] = viewer.error or "not ready"
                continue
            share = result.streamed_to(viewer.host, viewer.port)
            before = self.accounted_before.get(viewer.port, 0)
            shown = viewer.wait_shown(before + share, timeout_s=timeout_s)
            got = shown.accounted - before if shown is not None else 0
            if got < share:
                problems[viewer.port] = f"not everything was displayed in time ({got} of {share})"
        return problems

    def stop(self) -> None:
        for viewer in self.viewers:
            viewer.stop()


def run_pipeline(
    pipeline: Any,
    plate: str | Path | Any,
    options: Any = None,
    on_result: Callable[[Any], None] | None = None,
    *,
    keep: bool | None = None,
    title: str | None = None,
    client: Any = None,
) -> Any:
    """Run ``pipeline`` over ``plate`` (a folder, or a ``Plate``) as ``platestream run``
    does: start (or reuse) the viewers its streaming configs name, stream to them, wait
    until each showed its share, and return the ``RunResult`` (its ``viewer_problems``:
    what a viewer missed, by port). ``keep``: the viewers stay afterwards where their
    config is persistent (default: when there is a display to look at them).
    ``options``: ``RunOptions`` (workers, output folder, streaming on or off, executor:
    ``"local"`` or ``"dask"``); ``client``: a Dask distributed client to run the wells on."""
    from platestream.pipeline import (
        RunOptions,
        pipeline_streams,
        read_plate,
        viewer_configs,
    )
    from platestream.pipeline import run_pipeline as run_engine
    from platestream.viewer.manager import needs_display

    options = options or RunOptions()
    pipeline.check_functions()
    plate = plate if not isinstance(plate, str | Path) else read_plate(Path(plate))
    configs = viewer_configs(pipeline_streams(pipeline)) if options.stream else []
    keep = not needs_display() if keep is None else keep
    session = ViewerSession()
    if configs:
        session = ViewerSession.start(configs, title or f"platestream: {pipeline.name}", keep)
    try:
        if session.viewers and not options.connect_timeout_s:
            options = replace(options, connect_timeout_s=60.0)  # the viewers are starting
        result = run_engine(pipeline, plate, options, on_result=on_result, client=client)
        result.viewer_problems = session.wait(result)
    finally:
        if not keep:
            session.stop()
    return result
