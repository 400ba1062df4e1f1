"""``platestream.run_pipeline`` from Python does what ``platestream run`` does: it starts
the viewer the pipeline names, streams to it, waits for its share and stops it (not kept)
or leaves it (kept, persistent config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import platestream
from platestream.pipeline import RunOptions, SyntheticPlate, demo_pipeline, write_plate
from platestream.viewer.manager._visualizer import stop_viewer

from .conftest import GUI, viewer_pids
from .streaming import layers

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(300)]


def test_run_pipeline_starts_the_viewer_it_streams_to_and_waits_for_its_share(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    plate = SyntheticPlate(rows=1, columns=2, sites=1, size=64)
    write_plate(plate, tmp_path / "plate")
    pipeline = demo_pipeline(port=port, workers=1)
    assert viewer_pids(port) == []

    result = platestream.run_pipeline(
        pipeline, tmp_path / "plate", RunOptions(workers=1), keep=True
    )
    try:
        images = 2 * 3 * 3  # wells x channels x steps
        assert result.exit_code == 0 and result.streamed == images
        assert result.streamed_to("localhost", port) == images  # the default host
        assert result.viewer_problems == {}
        assert len(viewer_pids(port)) == 1  # kept: a persistent config's viewer stays
        streamed = [layer for layer in layers(port).layers if layer.streamed]
        assert len(streamed) == 9  # 3 steps x 3 channels
    finally:
        assert stop_viewer("127.0.0.1", port)

    again = platestream.run_pipeline(
        pipeline, tmp_path / "plate", RunOptions(workers=1), keep=False
    )
    assert again.viewer_problems == {} and again.streamed == images
    assert viewer_pids(port) == []  # not kept: stopped after its share was shown
