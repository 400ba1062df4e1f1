"""``platestream demo`` and ``platestream run`` end to end, small, with a real viewer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.viewer.conftest import GUI, viewer_pids
from tests.viewer.streaming import layers, png_of

ROOT = Path(__file__).parents[2]
STEPS = ((1, "background"), (2, "blur"), (3, "nuclei"))
CHANNELS = ("DAPI", "GFP", "RFP")


def _platestream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platestream", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=env,
    )


@GUI
def test_demo_streams_every_step_into_a_viewer_and_snapshots_it(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    out = tmp_path / "demo"
    result = _platestream(
        "demo",
        "--out",
        str(out),
        "--rows",
        "1",
        "--columns",
        "2",
        "--sites",
        "2",
        "--size",
        "96",
        "--port",
        str(port),
        "--workers",
        "2",
        "--keep",
    )
    assert result.returncode == 0, result.stderr
    assert "2/2 wells done" in result.stdout and "36 streamed, dropped: none" in result.stdout
    assert "2/2 wells written" in result.stdout  # writing the plate shows progress
    assert f"snapshot of the viewer on port {port}: {out / 'snapshot.png'}" in result.stdout

    report = layers(port)  # --keep: the viewer is still there to ask
    streamed = {layer.name: layer for layer in report.layers if layer.streamed}
    expected = {
        f"Step_{i:02d}_{s}_Channel_{c}" + ("_Labels" if s == "nuclei" else "")
        for i, s in STEPS
        for c in CHANNELS
    }
    assert set(streamed) == expected
    blur = streamed["Step_02_blur_Channel_GFP"]
    assert blur.shape[:2] == (2, 2) and blur.shape[-2:] == (96, 96)  # wells, sites, ..., Y, X
    assert blur.axis_labels[:2] == ("Well", "Site") and blur.axis_labels[-2:] == ("Y", "X")
    assert blur.colormap == "green"  # the per-channel colormap wins over the step's viridis
    assert streamed["Step_02_blur_Channel_RFP"].colormap == "magenta"
    assert streamed["Step_03_nuclei_Channel_DAPI_Labels"].kind == "labels"
    # The first view: the newest image step as a composite, the newest labels over it.
    shown = {name for name, layer in streamed.items() if layer.visible}
    assert shown == {n for n in expected if n.startswith(("Step_02", "Step_03"))}
    names = [layer.name for layer in report.layers if layer.streamed]
    assert names == sorted(
        names, key=lambda n: (n[:7], "Labels" in n, CHANNELS.index(n.split("_")[4]))
    )

    picture = png_of(out / "snapshot.png")[..., :3].astype(int)
    colourful = (picture.max(axis=-1) - picture.min(axis=-1)) > 60
    assert colourful.mean() > 0.01, "the snapshot shows no labels or colormapped pixels"
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50  # an image, not a flat fill
    written = list((out / "outputs").rglob("*.tif"))
    assert len(written) == 2 * 3 * 2 * 3  # wells x channels x sites x steps


@GUI
def test_run_a_pipeline_file_and_leave_nothing_behind(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        (ROOT / "examples" / "demo.toml")
        .read_text()
        .replace("napari_port = 5555", f"napari_port = {port}")
    )
    plate = ROOT / "examples" / "plates" / "imagexpress_demo"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # headless: own Xvfb
    result = _platestream(
        "run",
        str(pipeline),
        "--plate",
        str(plate),
        "--workers",
        "1",
        "--snapshot",
        str(tmp_path / "run.png"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "4/4 wells done" in result.stdout and "dropped: none" in result.stdout
    assert png_of(tmp_path / "run.png").shape[-1] == 4
    assert viewer_pids(port) == []  # headless, not kept: the viewer was stopped


def test_run_reports_a_bad_pipeline_file_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[steps]]\nname = 'x'\ncolormap = 'gray'\n")
    result = _platestream("run", str(bad), "--plate", str(tmp_path))
    assert result.returncode == 1
    assert f"{bad}:3:1: steps[0].colormap: unknown key" in result.stderr


def _xvfb_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "Xvfb"}


@GUI
def test_a_kept_headless_demo_viewer_takes_its_x_server_with_it(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    """``demo --keep`` with no display: the viewer stays, on an X server of its own, and
    when it is stopped no Xvfb is left running."""
    from tests.waiting import wait_until

    port = ports(1)
    before = _xvfb_pids()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    small = ("--rows", "1", "--columns", "1", "--sites", "1", "--size", "64")
    result = _platestream(
        "demo", "--out", str(tmp_path), *small, "--port", str(port), "--keep", env=env
    )
    assert result.returncode == 0, result.stderr
    assert layers(port).layers  # kept: still serving
    started = _xvfb_pids() - before
    assert started, "the kept viewer runs on no X server of its own"
    stopped = _platestream("viewer", "stop", str(port), env=env)
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not (_xvfb_pids() & started), 30, "the viewer's Xvfb to end with it")
    assert viewer_pids(port) == []


@GUI
def test_a_run_streaming_to_two_viewers_waits_for_each_ones_own_share(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    """The nuclei step streams to a second viewer: each viewer is waited for until it
    accounted for what was sent to it (a held request), not for the run's total."""
    port = ports(2)
    other = port + 1
    pipeline = tmp_path / "two.toml"
    text = (ROOT / "examples" / "demo.toml").read_text()
    text = text.replace("napari_port = 5555", f"napari_port = {port}")
    text = text.replace(
        'name = "nuclei"\n', f'name = "nuclei"\n\n[steps.napari_streaming]\nnapari_port = {other}\n'
    )
    pipeline.write_text(text)
    plate = ROOT / "examples" / "plates" / "imagexpress_demo"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = _platestream("run", str(pipeline), "--plate", str(plate), "--workers", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert "not everything was displayed" not in result.stderr, result.stderr
    assert "dropped: none" in result.stdout
    assert viewer_pids(port) == [] and viewer_pids(other) == []
