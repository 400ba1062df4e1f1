"""The README's "From Python" block runs as written against a real viewer."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import GUI

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(180)]


def test_the_readmes_python_block_runs_as_written(
    ports: Callable[[int], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    port = ports(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block.replace("port=5555", f"port={port}"), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.sent == 6 and not report.dropped  # type: ignore[attr-defined]
    assert (tmp_path / "screen42.png").stat().st_size > 0


def test_component_values_wait_in_the_queue_until_the_viewer_is_ready(
    ports: Callable[[int], int],
) -> None:
    import numpy as np

    from platestream.viewer.manager import NapariStreamVisualizer

    from .streaming import config, wait_received

    port = ports(1)
    with NapariStreamVisualizer(config(port), title="queued", persistent=False) as viewer:
        viewer.start_viewer()  # returns at once: what is saved now waits in the queue
        planes = [np.full((32, 48), 7, np.uint8), np.full((32, 48), 9, np.uint8)]
        where = [{"well": "A01", "channel": "DAPI"}, {"well": "A02", "channel": "DAPI"}]
        assert viewer.save_batch(planes, where, step_index=2, step_name="blur") is None
        assert viewer.wait_ready(60), viewer.error
        wait_received(viewer, 2)
        (layer,) = [layer for layer in viewer.layers().layers if layer.streamed]
        assert layer.name == "Step_02_blur_Channel_DAPI"  # the step given beside the values
        assert layer.shape == (2, 32, 48) and layer.dtype == "uint8"  # from the arrays


def test_the_pipeline_docs_example_runs_as_written(
    ports: Callable[[int], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/pipeline.md's block, with a synthetic plate for "path/to/plate" and a free
    port: the viewer it names is started, shows the run, and the outputs are written."""
    from platestream.pipeline import SyntheticPlate, write_plate
    from platestream.viewer.manager._visualizer import stop_viewer

    from .conftest import viewer_pids

    text = (ROOT / "docs" / "pipeline.md").read_text()
    (block,) = re.findall(r"## In Python\n\n```python\n(.*?)```", text, re.DOTALL)
    port = ports(1)
    write_plate(SyntheticPlate(rows=1, columns=2, sites=1, size=64), tmp_path / "plate")
    monkeypatch.chdir(tmp_path)
    code = block.replace("napari_port=5555", f"napari_port={port}").replace(
        '"path/to/plate"', repr(str(tmp_path / "plate"))
    )
    namespace: dict[str, object] = {}
    try:
        exec(compile(code, "docs/pipeline.md", "exec"), namespace)
        result = namespace["result"]
        assert result.exit_code == 0 and result.viewer_problems == {}  # type: ignore[attr-defined]
        assert result.streamed == 2 * 3 * 3  # type: ignore[attr-defined]  # wells, channels, steps
        assert len(list((tmp_path / "outputs").rglob("*.tif"))) == 2 * 3 * 3
        assert len(viewer_pids(port)) == 1  # persistent, and this machine has a display
    finally:
        stop_viewer("127.0.0.1", port)
