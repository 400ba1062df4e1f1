"""End to end, with real viewer processes under Xvfb: layout, pixels, lifetime, ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from platestream.viewer.manager._ports import ping
from platestream.viewer.manager._processes import wait_exit
from platestream.viewer.manager._records import read_record
from platestream.viewer.manager._visualizer import NapariStreamVisualizer, PortConflict, stop_viewer

from .conftest import GUI, viewer_pids
from .streaming import SQUARE, config, layers, plate, png_of, wait_received

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(180)]
CAPTION_STRIP = 40  # pixels at the bottom of a canvas snapshot that hold the caption

STEPS = [(0, "raw"), (1, "blur")]


def test_a_streamed_plate_is_laid_out_and_drawn(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    colormaps = {"1": "green", "2": "magenta"}
    with NapariStreamVisualizer(
        config(port, channel_colormaps=colormaps), title="plate test", persistent=False
    ) as visualizer:
        visualizer.start_viewer()  # returns at once; images wait in the queue
        arrays, items = plate(STEPS, ["A01", "B02"], [1, 2], [1, 2])
        first = visualizer.save_batch(arrays[:8], items[:8])
        assert first is None and visualizer.queued == 8
        assert visualizer.wait_ready(60), visualizer.error
        assert visualizer.queued == 0
        visualizer.save_batch(arrays[8:], items[8:])
        wait_received(visualizer, 16)

        report = layers(port)
        streamed = {layer.name: layer for layer in report.layers if layer.streamed}
        assert sorted(streamed) == [
            f"Step_{i:02d}_{name}_Channel_{c}" for i, name in STEPS for c in (1, 2)
        ]
        for layer in streamed.values():
            assert layer.shape == (2, 2, 64, 64) and layer.dtype == "uint16"
            assert layer.axis_labels == ("Well", "Site", "Y", "X")
            assert layer.contrast_limits == (0.0, 1000.0)
        assert streamed["Step_01_blur_Channel_2"].colormap == "magenta"
        assert streamed["Step_00_raw_Channel_1"].colormap == "green"
        assert report.axis_labels == ("Well", "Site", "Y", "X")
        assert report.caption == "Step 01_blur | Well A01 | Channel 2 | Site 001"

        status = visualizer.status()
        assert status is not None
        assert status.state.display.displayed == 16 and status.state.display.layers == 4
        assert status.state.display.title == "plate test"
        assert status.dropped == {}

        picture = png_of(visualizer.snapshot(tmp_path / "plate.png"))
        # The newest step's two channels, green and magenta, add up: a white square
        assert_square_drawn(picture, color=COMPOSITE)


COMPOSITE = (255, 255, 255)  # green + magenta, blended additively


def assert_square_drawn(rgba: np.ndarray, color: tuple[int, int, int]) -> None:
    """The image shows as dim ``color``, the square at full ``color``, where it should be
    (the caption's strip at the bottom of the canvas left out: its text is gray too)."""
    rgb = rgba[:-CAPTION_STRIP, :, :3].astype(int)
    hue = np.array(color) > 0
    # magenta-family pixels: the off channels are dark, the on channels equal
    # (gray anti-aliased caption text has all three channels alike, so it is not in it)
    on, off = rgb[..., hue], rgb[..., ~hue]
    family = (off <= 5).all(axis=-1) & (on > 10).all(axis=-1) & (np.ptp(on, axis=-1) <= 5)
    bright = family & (rgb[..., hue] > 240).all(axis=-1)
    assert bright.any(), "no bright square in the snapshot"
    rows, cols = np.nonzero(family)
    top, left, height, width = rows.min(), cols.min(), np.ptp(rows) + 1, np.ptp(cols) + 1
    square_rows, square_cols = np.nonzero(bright)
    # where the square is, as a fraction of the image's extent on the canvas
    found = (
        (square_rows.min() - top) / height,
        (square_rows.max() + 1 - top) / height,
        (square_cols.min() - left) / width,
        (square_cols.max() + 1 - left) / width,
    )
    expected = (
        SQUARE[0].start / 64,
        SQUARE[0].stop / 64,
        SQUARE[1].start / 64,
        SQUARE[1].stop / 64,
    )
    assert np.allclose(found, expected, atol=0.03), (found, expected)
    dim = rgb[family & ~bright][:, hue]
    assert 20 <= int(np.median(dim)) <= 32  # the background: 100 of (0, 1000) -> ~10 %


PRODUCER = textwrap.dedent(
    """
    import sys
    from tests.viewer.streaming import config, plate
    from platestream.viewer.manager._visualizer import NapariStreamVisualizer
    port = int(sys.argv[1])
    visualizer = NapariStreamVisualizer(config(port), title="persistent", persistent=True)
    visualizer.start_viewer(async_mode=False)
    arrays, items = plate([(0, "raw")], ["A01"], [1], [1, 2])
    report = visualizer.save_batch(arrays, items)
    assert report is not None and report.sent == 2, report
    visualizer.close()  # persistent: the viewer stays
    print(visualizer.pong.pid, flush=True)
    """
)


def run_script(code: str, port: int) -> int:
    """Run ``code`` in a child Python with ``port`` as its argument; it prints a viewer pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_a_persistent_viewer_outlives_its_producer_and_serves_the_next_run(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    viewer_pid = run_script(PRODUCER, port)
    pong = ping("127.0.0.1", port, 5.0)
    assert pong is not None and pong.pid == viewer_pid  # the producer is gone, it is not
    assert os.getsid(viewer_pid) == viewer_pid  # its own session
    assert read_record(port) is not None

    with NapariStreamVisualizer(config(port), persistent=True) as second:
        second.start_viewer(async_mode=False)
        assert second.process is None  # reused, not spawned
        assert second.pong is not None and second.pong.viewer_id == pong.viewer_id
        arrays, items = plate([(1, "blur")], ["A01", "A02"], [1], [1])
        second.save_batch(arrays, items)
        wait_received(second, 4)
        names = {layer.name: layer.shape for layer in layers(port).layers}
        assert names == {
            "Step_00_raw_Channel_1": (2, 2, 64, 64),  # grew: A02 came with the second run
            "Step_01_blur_Channel_1": (2, 2, 64, 64),
        }
        status = json.loads(cli("status", str(port)))
        assert status["viewer_id"] == pong.viewer_id and status["images"] == 4
        assert status["state"]["display"]["title"] == "persistent"
        picture = tmp_path / "cli.png"
        cli("snapshot", str(port), str(picture))
        assert png_of(picture).shape[2] == 4
        cli("clear", str(port))
        assert not layers(port).layers
        cli("stop", str(port))
    assert wait_exit(viewer_pid, 10)
    assert read_record(port) is None  # removed on a clean exit


FOREIGN = textwrap.dedent(
    """
    import socket, sys
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1])))
    server.listen()
    print("listening", flush=True)
    sys.stdin.read()
    """
)


def test_a_port_held_by_another_program_is_left_alone(ports: Callable[[int], int]) -> None:
    port = ports(3)
    foreign = subprocess.Popen(
        [sys.executable, "-c", FOREIGN, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert foreign.stdout is not None and foreign.stdout.readline() == "listening\n"
        strict = NapariStreamVisualizer(config(port), on_conflict="fail", persistent=False)
        strict.start_viewer(async_mode=False)
        assert not strict.wait_ready(0) and strict.error is not None
        assert PortConflict.__name__ in strict.error
        assert not stop_viewer("127.0.0.1", port)  # not a viewer: not stopped
        other_config = config(port + 2, colormap="viridis")
        with (
            NapariStreamVisualizer(config(port), persistent=False) as moved,
            NapariStreamVisualizer(other_config, title="other", persistent=False) as other,
        ):  # two viewers at once, each with its own configuration
            moved.start_viewer()
            other.start_viewer()
            assert moved.wait_ready(60), moved.error
            assert other.wait_ready(60), other.error
            assert moved.port == port + 1 and other.port == port + 2
            assert moved.save_batch(*plate([(0, "raw")], ["A01"], [1], [1])) is not None
            assert other.save_batch(*plate([(0, "raw")], ["A01", "A02"], [1], [1])) is not None
            wait_received(moved, 1)
            wait_received(other, 2)
            (shown,) = layers(port + 1).layers
            (elsewhere,) = layers(port + 2).layers
            assert shown.colormap == "gray" and shown.shape == (1, 1, 64, 64)
            assert elsewhere.colormap == "viridis" and elsewhere.shape == (2, 1, 64, 64)
        assert foreign.poll() is None  # alive and untouched
    finally:
        foreign.kill()
        foreign.wait(10)


def test_killed_and_hung_viewers_are_seen_and_replaced(ports: Callable[[int], int]) -> None:
    port = ports(1)
    first = NapariStreamVisualizer(config(port), persistent=True)
    first.start_viewer(async_mode=False)
    assert first.pong is not None
    os.kill(first.pong.pid, signal.SIGKILL)
    assert wait_exit(first.pong.pid, 10)
    assert first.process is not None and first.process.wait(10) == -signal.SIGKILL
    assert list_ports(port) == [("red", first.pong.pid)]

    second = NapariStreamVisualizer(config(port), persistent=True)
    second.start_viewer(async_mode=False)
    assert second.wait_ready(0), second.error
    assert second.pong is not None and second.pong.viewer_id != first.pong.viewer_id
    assert list_ports(port) == [("green", second.pong.pid)]

    os.kill(second.pong.pid, signal.SIGSTOP)  # hung: holds its ports, answers nothing
    third = NapariStreamVisualizer(config(port), persistent=True, quit_timeout_s=1.0)
    third.start_viewer(async_mode=False)
    assert third.wait_ready(0), third.error
    assert third.pong is not None and third.pong.pid != second.pong.pid
    assert second.process is not None and second.process.wait(10) == -signal.SIGKILL
    assert viewer_pids(port) == [third.pong.pid]
    assert third.stop(timeout_s=10)  # quit_timeout_s=1 was for the hung viewer; a bound, not a wait
    assert list_ports(port) == []


def cli(*args: str) -> str:
    """Run ``platestream viewer ARGS`` in a fresh process; its standard output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "platestream", "viewer", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return done.stdout


def list_ports(port: int) -> list[tuple[str, int]]:
    rows = json.loads(cli("list", "--ports", f"{port}-{port}", "--json"))
    return [(row["status"], row["pid"]) for row in rows]


SHORT_LIVED_PARENT = textwrap.dedent(
    """
    import os, sys
    from tests.viewer.streaming import config
    from platestream.viewer.manager._visualizer import NapariStreamVisualizer
    visualizer = NapariStreamVisualizer(config(int(sys.argv[1])), persistent=False)
    visualizer.start_viewer(async_mode=False)
    print(visualizer.pong.pid, flush=True)
    os._exit(0)  # no cleanup at all, as if killed
    """
)


def test_a_non_persistent_viewer_ends_with_the_process_that_started_it(
    ports: Callable[[int], int],
) -> None:
    port = ports(1)
    viewer_pid = run_script(SHORT_LIVED_PARENT, port)
    assert wait_exit(viewer_pid, 20)
    assert read_record(port) is None  # it ended cleanly, not killed


def test_the_handle_takes_a_config_per_call_and_paths_as_targets(
    ports: Callable[[int], int],
) -> None:
    """The handle's save_batch has the backend's signature: a per-call config (here a
    colormap; its port is overridden by the handle's) and file paths read by their
    microscope naming."""
    from platestream.config import NapariStreamingConfig

    port = ports(1)
    with NapariStreamVisualizer(config(port), title="handle", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        paths = ["/plate/x_A01_s1_w1.tif", "/plate/x_B02_s2_w1.tif"]
        tinted = NapariStreamingConfig(colormap="magenta", napari_port=port + 1)
        report = visualizer.save_batch(
            [np.ones((8, 8), np.uint16)] * 2, paths, config=tinted, step_name="raw"
        )
        assert report is not None and report.sent == 2
        wait_received(visualizer, 2)
        (layer,) = [info for info in layers(port).layers if info.streamed]
        assert layer.colormap == "magenta"
        assert layer.shape[:2] == (2, 2)  # two wells, two sites: nothing overwritten
