"""The pipeline runner: TOML and Python pipelines, grouping, outputs, failures, streaming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from numpy.typing import NDArray

from platestream.backend._receiver import Receiver, ReceiverOptions
from platestream.config import ConfigError, NapariStreamingConfig, PipelineConfig
from platestream.pipeline import _functions as functions
from platestream.pipeline._demo import demo_pipeline
from platestream.pipeline._model import (
    FunctionCall,
    FunctionStep,
    Pipeline,
    load_pipeline_file,
    pipeline_streams,
)
from platestream.pipeline._runner import RunOptions, run_pipeline
from platestream.pipeline._synthetic import SyntheticPlate, write_plate
from platestream.schemas import Ok

ROOT = Path(__file__).parents[2]
PLATE = SyntheticPlate(name="t", rows=1, columns=3, channels=("DAPI", "GFP"), sites=2, size=64)


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plate")
    write_plate(PLATE, root)
    return root


def fail_on_empty(image: NDArray[np.float32]) -> NDArray[np.float32]:
    if not np.any(image):
        raise ValueError("this site is empty")
    return image


def max_project(stack: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(stack.max(axis=0), dtype=np.float32)


def double(image: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32) * 2


def fill_from_environment(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """The value of PLATESTREAM_TEST_FILL in the worker, and whether the worker found the
    transport already imported (by the fork server) before its first task."""
    import os
    import sys

    preloaded = "platestream.backend._link" in sys.modules
    value = float(os.environ.get("PLATESTREAM_TEST_FILL", "-1"))
    return np.asarray([value, float(preloaded), float(os.getppid())], dtype=np.float32)


def report_niceness(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """The worker's scheduling niceness and its session's (autogroup; -1: none), as an
    image."""
    import os

    from platestream.pipeline._priority import autogroup_nice

    session = autogroup_nice()
    return np.asarray([float(os.nice(0)), -1.0 if session is None else session], np.float32)


def _pipeline(*steps: FunctionStep, stream: bool = False, port: int = 5555) -> Pipeline:
    config = NapariStreamingConfig(
        enabled=stream, napari_port=port, delivery="lossless", lossless_budget_s=20.0
    )
    return Pipeline("t", steps, config=PipelineConfig(napari_streaming=config))


def test_python_and_toml_forms_of_the_demo_resolve_identical_configs() -> None:
    python = demo_pipeline()
    toml = load_pipeline_file(ROOT / "examples" / "demo.toml")
    assert python.resolved_configs() == toml.resolved_configs()
    assert [s.name for s in pipeline_streams(python)] == ["background", "blur", "nuclei"]
    origin = toml.resolve(1, 0).origins["napari_streaming.colormap"]
    assert origin.startswith(str(ROOT / "examples" / "demo.toml") + ":")
    assert python.resolve(1, 0).origins["napari_streaming.colormap"] == "step 'blur' (Python)"


def test_toml_pipeline_runs_and_writes_every_output(plate: Path, tmp_path: Path) -> None:
    toml = load_pipeline_file(ROOT / "examples" / "demo.toml")
    result = run_pipeline(
        toml, plate, RunOptions(workers=1, output_dir=str(tmp_path), stream=False)
    )
    assert result.exit_code == 0 and [w.well for w in result.wells] == ["A01", "A02", "A03"]
    assert sum(w.outputs for w in result.wells) == 3 * 12  # 3 steps x 12 images
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.tif"))
    assert len(written) == 36
    assert "Step_03_nuclei/TimePoint_1/t_A02_s2_w1.tif" in written
    mask = tifffile.imread(tmp_path / "Step_03_nuclei/TimePoint_1/t_A02_s2_w1.tif")
    source = tifffile.imread(plate / "TimePoint_1/t_A02_s2_w1.tif")
    expected = functions.threshold_labels(
        functions.gaussian_blur(functions.subtract_background(source, radius=15), sigma=2.0),
        min_size=30,
    )
    assert np.array_equal(mask, expected)


def test_group_by_stacks_images_and_projections_drop_the_component(
    plate: Path, tmp_path: Path
) -> None:
    step = FunctionStep("project", (FunctionCall.of(max_project),), group_by="site")
    result = run_pipeline(_pipeline(step), plate, RunOptions(workers=1, output_dir=str(tmp_path)))
    assert result.exit_code == 0
    assert sum(w.outputs for w in result.wells) == 3 * 2  # one per well and channel
    out = tmp_path / "Step_01_project/TimePoint_1/t_A01_s1_w2_site_merged.tif"
    sites = [tifffile.imread(plate / f"TimePoint_1/t_A01_s{s}_w2.tif") for s in (1, 2)]
    assert np.array_equal(tifffile.imread(out), np.maximum(*sites).astype(np.float32))


def plate_with_an_empty_site(tmp_path: Path) -> Path:
    """The test plate, with well A02's first site all zeros (``fail_on_empty`` fails)."""
    broken = tmp_path / "plate"
    write_plate(PLATE, broken)
    target = broken / "TimePoint_1/t_A02_s1_w1.tif"
    tifffile.imwrite(target, np.zeros_like(tifffile.imread(target)))
    return broken


def test_a_failing_step_names_step_well_and_function_and_other_wells_go_on(
    plate: Path, tmp_path: Path
) -> None:
    broken = plate_with_an_empty_site(tmp_path)
    steps = (
        FunctionStep("scale", (FunctionCall.of(double),)),
        FunctionStep(
            "check", (FunctionCall.of(double, name="before"), FunctionCall.of(fail_on_empty))
        ),
    )
    result = run_pipeline(_pipeline(*steps), broken, RunOptions(workers=2))
    assert result.exit_code == 1
    assert [str(f) for f in result.failures] == [
        "well A02, step 'check', function 'fail_on_empty': ValueError: this site is empty"
    ]
    assert "in fail_on_empty" in result.failures[0].details
    done = {w.well: w.outputs for w in result.wells}
    assert done["A01"] == done["A03"] == 12 and done["A02"] == 8  # scale, before: 4 each


def test_a_failed_well_is_told_to_the_viewer_for_its_plate_overview(
    tmp_path: Path, receiver: Receiver
) -> None:
    broken = plate_with_an_empty_site(tmp_path)
    told: list[Any] = []
    receiver.handle("wells_failed", lambda request: told.append(request.message) or Ok())
    steps = (FunctionStep("check", (FunctionCall.of(fail_on_empty),)),)
    pipeline = _pipeline(*steps, stream=True, port=receiver.data_port)
    result = run_pipeline(pipeline, broken, RunOptions(workers=1, connect_timeout_s=20))
    assert result.exit_code == 1
    (message,) = told  # answered before run_pipeline went on: no wait needed
    assert message.step_name == "check" and message.wells == ("A02",)
    assert "'fail_on_empty': ValueError: this site is empty" in message.reason


def test_workers_see_the_environment_of_each_run(
    plate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing
    import os

    steps = (FunctionStep("env", (FunctionCall.of(fill_from_environment),)),)
    for value in ("3", "7"):  # the second run reuses the fork server started by the first
        monkeypatch.setenv("PLATESTREAM_TEST_FILL", value)
        out = tmp_path / value
        result = run_pipeline(_pipeline(*steps), plate, RunOptions(workers=2, output_dir=str(out)))
        assert result.exit_code == 0 and result.workers == 2
        written = [tifffile.imread(f) for f in sorted(out.rglob("*.tif"))]
        assert len(written) == 12
        assert {float(w[0]) for w in written} == {float(value)}
        if "forkserver" in multiprocessing.get_all_start_methods():
            assert {float(w[1]) for w in written} == {1.0}  # preloaded by the fork server
            assert os.getpid() not in {int(w[2]) for w in written}  # not forked from here


def test_unimportable_function_fails_before_any_work(plate: Path) -> None:
    bad = FunctionStep("x", (FunctionCall("platestream.pipeline._functions:no_such"),))
    with pytest.raises(ConfigError, match="has no 'no_such'"):
        run_pipeline(_pipeline(bad), plate, RunOptions(workers=1))
    with pytest.raises(ConfigError, match="must be importable"):
        FunctionCall.of(lambda image: image)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(ReceiverOptions(port=0)) as live:
        live.start()
        yield live


def _received(receiver: Receiver, expected: int, timeout_s: float = 30.0) -> list[object]:
    images: list[object] = []
    while len(images) < expected:
        assert receiver.wait(timeout_s), f"only {len(images)} of {expected} images arrived"
        for batch in receiver.take():
            images.extend(batch.images)
    return images


def test_every_output_streams_with_its_metadata(plate: Path, receiver: Receiver) -> None:
    steps = (
        FunctionStep("scale", (FunctionCall.of(double),)),
        FunctionStep("mask", (FunctionCall.of(functions.threshold_labels, output="labels"),)),
    )
    pipeline = _pipeline(*steps, stream=True, port=receiver.data_port)
    result = run_pipeline(pipeline, plate, RunOptions(workers=2, connect_timeout_s=20))
    assert result.exit_code == 0 and result.streamed == 24 and result.dropped == 0
    images = _received(receiver, 24)
    seen = {
        (
            i.item.step_index,
            i.item.step_name,
            i.item.kind.value,
            i.item.components["well"],
            i.item.components["site"],
            i.item.components["channel"],
        )
        for i in images
    }
    assert len(seen) == 24
    assert (2, "mask", "labels", "A03", 2, "GFP") in seen
    # each worker declared the plate's layout, so the viewer sized its layers at once
    layouts = receiver.take_layouts()
    assert layouts and all(
        {k: set(v) for k, v in layout.items()}
        == {
            "well": {"A01", "A02", "A03"},
            "site": {1, 2},
            "channel": {"DAPI", "GFP"},
            "timepoint": {1},
        }
        for layout in layouts
    )
    one = next(
        i
        for i in images
        if i.item.step_name == "scale"
        and i.item.components["well"] == "A01"
        and i.item.components["site"] == 1
        and i.item.components["channel"] == "DAPI"
    )
    source = tifffile.imread(plate / "TimePoint_1/t_A01_s1_w1.tif")
    assert np.array_equal(one.data, source.astype(np.float32) * 2)
    runs = {i.item.extra["run"] for i in images}
    assert len(runs) == 1 and next(iter(runs)) > 0  # one run id, for replace_layers


def test_streaming_off_sends_nothing(plate: Path, receiver: Receiver) -> None:
    step = FunctionStep("scale", (FunctionCall.of(double),))
    off = Pipeline(
        "t",
        (step,),
        config=PipelineConfig(
            napari_streaming=NapariStreamingConfig(enabled=False, napari_port=receiver.data_port)
        ),
    )
    result = run_pipeline(off, plate, RunOptions(workers=1))
    assert result.streamed == 0 and result.dropped == 0
    on = _pipeline(step, stream=True, port=receiver.data_port)
    result = run_pipeline(on, plate, RunOptions(workers=1, stream=False))
    assert result.streamed == 0
    assert not receiver.wait(0.2)  # nothing queued for the display


def test_workers_run_nicer_than_the_process_that_started_them(plate: Path, tmp_path: Path) -> None:
    """So a viewer on the same machine, at the default priority, gets a core when it has
    images to show while the workers keep every core busy."""
    import os

    from platestream.pipeline._priority import autogroup_nice
    from platestream.pipeline._runner import WORKER_NICENESS

    steps = (FunctionStep("nice", (FunctionCall.of(report_niceness),)),)
    out = tmp_path / "nice"
    session = autogroup_nice()  # None where the kernel schedules no autogroups
    result = run_pipeline(_pipeline(*steps), plate, RunOptions(workers=2, output_dir=str(out)))
    assert result.exit_code == 0
    seen = {tuple(tifffile.imread(f).tolist()) for f in out.rglob("*.tif")}
    nice = float(min(19, os.nice(0) + WORKER_NICENESS))
    # With autogroups, the CPU is shared between sessions first (every viewer has its own):
    # the run's session went below the others while the workers ran, and came back after.
    expected = -1.0 if session is None else float(max(session, WORKER_NICENESS))
    assert seen == {(nice, expected)}
    assert autogroup_nice() == session
