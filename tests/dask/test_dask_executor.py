"""Wells as Dask distributed tasks: a LocalCluster for the run, a real scheduler and two
workers started here, a worker killed mid-run - and every image streamed, once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from platestream.backend import Receiver, ReceiverOptions
from platestream.config import NapariStreamingConfig, PipelineConfig
from platestream.pipeline import (
    FunctionCall,
    FunctionStep,
    Pipeline,
    RunOptions,
    SyntheticPlate,
    run_pipeline,
    write_plate,
)

from ..viewer.conftest import GUI
from ..waiting import wait_until

distributed = pytest.importorskip("distributed")

PLATE = SyntheticPlate(name="d", rows=2, columns=3, channels=("DAPI", "GFP"), sites=2, size=64)
WELLS, IMAGES = 6, 6 * 2 * 2  # wells; images per step


def double(image: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32) * 2


def fail_on_empty(image: NDArray[np.float32]) -> NDArray[np.float32]:
    if not np.any(image):
        raise ValueError("an empty image")
    return np.asarray(image, dtype=np.float32)


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plate")
    write_plate(PLATE, root)
    return root


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(ReceiverOptions(port=0)) as live:
        live.start()
        yield live


def _pipeline(port: int) -> Pipeline:
    config = NapariStreamingConfig(
        enabled=True, napari_port=port, delivery="lossless", lossless_budget_s=30.0
    )
    steps = (FunctionStep("scale", (FunctionCall.of(double),)),)
    return Pipeline("dask", steps, config=PipelineConfig(napari_streaming=config))


def _received(receiver: Receiver, expected: int) -> dict[tuple[object, ...], list[object]]:
    """Planes seen (well, site, channel) -> the display config of each time it came, once
    ``expected`` distinct planes arrived."""
    seen: dict[tuple[object, ...], list[object]] = {}
    while len(seen) < expected:
        assert receiver.wait(60), f"only {len(seen)} of {expected} planes arrived"
        for batch in receiver.take():
            for image in batch.images:
                c = image.item.components
                seen.setdefault((c["well"], c["site"], c["channel"]), []).append(batch.display)
    return seen


def _received_planes(receiver: Receiver, expected: int) -> dict[tuple[object, ...], int]:
    """Planes seen -> how often."""
    return {plane: len(displays) for plane, displays in _received(receiver, expected).items()}


def test_a_local_cluster_runs_the_wells_and_streams_every_image(
    plate: Path, receiver: Receiver
) -> None:
    done: list[str] = []
    options = RunOptions(workers=2, executor="dask", connect_timeout_s=30)
    result = run_pipeline(
        _pipeline(receiver.data_port), plate, options, on_result=lambda r: done.append(r.well)
    )
    assert result.exit_code == 0 and result.streamed == IMAGES and result.dropped == 0
    assert sorted(done) == sorted(w.well for w in result.wells) and len(done) == WELLS
    seen = _received_planes(receiver, IMAGES)
    assert set(seen.values()) == {1}  # each plane once


class Cluster:
    """A real ``dask scheduler`` and ``dask worker`` processes on loopback."""

    def __init__(self, workers: int) -> None:
        self.scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.scheduler.stderr is not None
        self.address = ""
        for line in self.scheduler.stderr:
            found = re.search(r"Scheduler at:\s+(tcp://\S+)", line)
            if found:
                self.address = found.group(1)
                break
        assert self.address, "the scheduler said no address"
        self.workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--no-nanny",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        self.client = distributed.Client(self.address)
        self.client.wait_for_workers(workers, timeout=60)

    def close(self) -> None:
        self.client.close()
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster(2)
    yield running
    running.close()


@GUI
def test_a_scheduler_and_two_workers_stream_every_image_into_a_viewer(
    plate: Path, tmp_path: Path, cluster: Cluster, ports: Callable[[int], int]
) -> None:
    """A real ``dask scheduler`` and two ``dask worker`` processes, one napari viewer:
    every image displayed (its counters, its layers, a snapshot), by both workers."""
    from platestream.viewer.manager import NapariStreamVisualizer

    from ..viewer.streaming import layers, png_of

    port = ports(1)
    config = NapariStreamingConfig(napari_port=port, delivery="lossless", overview=False)
    with NapariStreamVisualizer(config, title="dask", persistent=False) as viewer:
        viewer.start_viewer(async_mode=False)
        options = RunOptions(executor="dask", scheduler=cluster.address, connect_timeout_s=30)
        result = run_pipeline(_pipeline(port), plate, options)
        assert result.exit_code == 0 and result.streamed == IMAGES
        shown = viewer.wait_shown(IMAGES, timeout_s=120)
        assert shown is not None and shown.displayed == IMAGES and shown.dropped == 0
        status = viewer.status()
        assert status is not None and 1 <= len(status.producers) <= 2  # the workers, no more
        streamed = [layer for layer in layers(port).layers if layer.streamed]
        assert len(streamed) == 2 and all(layer.shape[:2] == (WELLS, 2) for layer in streamed)
        picture = png_of(viewer.snapshot(tmp_path / "cluster.png"))[..., :3]
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20


def test_a_worker_killed_mid_run_has_its_wells_run_elsewhere(
    plate: Path, receiver: Receiver, cluster: Cluster
) -> None:
    pids = cluster.client.run(os.getpid)  # worker address -> pid
    victim = next(process for process in cluster.workers if process.pid in pids.values())
    killed: list[int] = []

    def kill_after_the_first_well(result: object) -> None:
        if not killed:
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    options = RunOptions(executor="dask", scheduler=cluster.address, connect_timeout_s=30)
    result = run_pipeline(
        _pipeline(receiver.data_port), plate, options, on_result=kill_after_the_first_well
    )
    assert killed and victim.wait(30) == -signal.SIGKILL
    assert result.exit_code == 0 and len(result.wells) == WELLS
    seen = _received_planes(receiver, IMAGES)  # every plane arrived (a rerun may resend)
    assert len(seen) == IMAGES
    wait_until(lambda: receiver.stats().pools <= 1, 30, "the dead worker's pool released")


def test_a_failing_well_is_named_and_the_others_go_on(
    plate: Path, tmp_path: Path, receiver: Receiver
) -> None:
    import shutil

    import tifffile

    broken = tmp_path / "plate"
    shutil.copytree(plate, broken)
    victim = next(broken.rglob("d_B02_s1_w1.tif"))
    tifffile.imwrite(victim, np.zeros((64, 64), np.uint16))
    config = NapariStreamingConfig(enabled=True, napari_port=receiver.data_port)
    steps = (FunctionStep("check", (FunctionCall.of(fail_on_empty),)),)
    pipeline = Pipeline("dask", steps, config=PipelineConfig(napari_streaming=config))
    result = run_pipeline(pipeline, broken, RunOptions(workers=2, executor="dask"))
    assert result.exit_code == 1
    (failure,) = result.failures
    assert (failure.well, failure.step) == ("B02", "check") and "fail_on_empty" in str(failure)
    assert sum(1 for w in result.wells if w.failure is None) == WELLS - 1


def test_python_and_cli_forms_stream_the_same_images_with_the_same_configs(
    plate: Path, tmp_path: Path, receiver: Receiver
) -> None:
    """``platestream run --executor dask`` and ``run_pipeline(executor="dask")`` from the
    same pipeline file: the same planes, each with the same resolved display config."""
    from platestream.pipeline import load_pipeline_file

    toml = tmp_path / "p.toml"
    toml.write_text(
        f"""
[pipeline]
name = "dask"

[pipeline.napari_streaming]
enabled = true
napari_port = {receiver.data_port}
delivery = "lossless"
colormap = "viridis"

[[steps]]
name = "scale"

[[steps.functions]]
function = "tests.dask.test_dask_executor:double"
"""
    )

    def displays() -> dict[tuple[object, ...], object]:
        return {plane: shown[-1] for plane, shown in _received(receiver, IMAGES).items()}

    options = RunOptions(workers=2, executor="dask", connect_timeout_s=30)
    python = run_pipeline(load_pipeline_file(toml), plate, options)
    assert python.exit_code == 0
    from_python = displays()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "platestream",
            "run",
            str(toml),
            "--plate",
            str(plate),
            "--executor",
            "dask",
            "--workers",
            "2",
            "--no-viewer",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"{WELLS}/{WELLS} wells done" in cli.stdout and f"{IMAGES} streamed" in cli.stdout
    from_cli = displays()
    assert from_cli == from_python
    assert {d.colormap.value for d in from_cli.values()} == {"viridis"}


@GUI
def test_a_local_cluster_streams_into_a_napari_viewer(
    plate: Path, tmp_path: Path, ports: Callable[[int], int]
) -> None:
    from platestream.viewer.manager import NapariStreamVisualizer

    from ..viewer.streaming import layers, png_of

    port = ports(1)
    config = NapariStreamingConfig(napari_port=port, delivery="lossless", overview=False)
    with NapariStreamVisualizer(config, title="dask", persistent=False) as viewer:
        viewer.start_viewer(async_mode=False)
        options = RunOptions(workers=2, executor="dask", connect_timeout_s=30)
        result = run_pipeline(_pipeline(port), plate, options)
        assert result.exit_code == 0 and result.streamed == IMAGES
        shown = viewer.wait_shown(IMAGES, timeout_s=120)
        assert shown is not None and shown.displayed == IMAGES and shown.dropped == 0
        streamed = {layer.name: layer for layer in layers(port).layers if layer.streamed}
        assert set(streamed) == {"Step_01_scale_Channel_DAPI", "Step_01_scale_Channel_GFP"}
        assert all(layer.shape[:2] == (WELLS, 2) for layer in streamed.values())  # no gaps
        picture = png_of(viewer.snapshot(tmp_path / "dask.png"))[..., :3]
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # an image, not a fill
