"""``platestream runs list/rm``, and the store settings reaching viewers from a pipeline file
(``viewer start --config``, ``demo --config``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from platestream.cli import main
from platestream.cli.run_cmd import with_streaming_settings
from platestream.cli.viewer_cmd import streaming_config
from platestream.config import resolve_current
from platestream.layering import ImageItem
from platestream.pipeline import demo_pipeline
from platestream.store import RunStore
from platestream.viewer.manager import store_arguments

SETTINGS = """
[pipeline]
name = "budget"
[pipeline.napari_streaming]
store_dir = "{store_dir}"
viewer_memory_mb = 512
store_codec = "zstd"
overview_tile_px = 64

[[steps]]
name = "blur"
[[steps.functions]]
function = "platestream.pipeline._functions:gaussian_blur"
"""


def a_run(path: Path, title: str) -> Path:
    store = RunStore(path, title=title)
    location, _ = store.locate(ImageItem({"well": "B02", "site": 1}, 0, "raw", (8, 8), "uint8"))
    assert location is not None
    store.put(location, np.ones((8, 8), np.uint8), lambda ok: None)
    store.close()
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(SETTINGS.format(store_dir=tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return path


def test_runs_list_and_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    a_run(runs / "20261201-090000_first", "first screen")
    a_run(runs / "20261202-100000_second", "second screen")
    assert main(["runs", "list", "--store-dir", str(runs), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["title"] for r in listed] == ["first screen", "second screen"]
    assert listed[0]["plates"] == ["s00_raw"] and listed[0]["bytes"] > 0
    assert main(["runs", "rm", "20261201", "--store-dir", str(runs)]) == 1  # no --yes, no tty
    assert "add --yes" in capsys.readouterr().err
    assert (runs / "20261201-090000_first").exists()
    assert main(["runs", "rm", "20261201", "--store-dir", str(runs), "--yes"]) == 0
    assert not (runs / "20261201-090000_first").exists()
    assert main(["runs", "list", "--store-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "second screen" in out and "first screen" not in out
    assert main(["runs", "rm", "nothing", "--store-dir", str(runs), "--yes"]) == 1
    assert f"no run 'nothing' (not a run folder, nor a run in {runs})" in capsys.readouterr().err


def test_a_pipeline_files_store_settings_reach_the_viewer_command(
    settings: Path, tmp_path: Path
) -> None:
    args = argparse.Namespace(
        config=settings,
        store=None,
        store_dir=None,
        memory_mb=None,
        port=5600,
        overview=None,
        overview_tile=None,
        overview_sites=None,
    )
    resolved = resolve_current(streaming_config(args)).value
    arguments = store_arguments(resolved)
    assert arguments == [
        "--store",
        "disk",
        "--codec",
        "zstd",
        "--memory-mb",
        "512",
        "--store-dir",
        str(tmp_path / "runs"),
        "--overview-tile",
        "64",
        "--overview-sites",
        "auto",
    ]
    args.overview, args.overview_sites = False, "2x5"  # viewer start --no-overview ...
    resolved = resolve_current(streaming_config(args)).value
    assert store_arguments(resolved)[-5:] == [
        "--no-overview",
        "--overview-tile",
        "64",
        "--overview-sites",
        "2x5",
    ]
    args.store, args.memory_mb = "memory", 64  # the command line wins over the file
    resolved = resolve_current(streaming_config(args)).value
    assert store_arguments(resolved)[:6] == [
        "--store",
        "memory",
        "--codec",
        "zstd",
        "--memory-mb",
        "64",
    ]
    assert resolved.napari_port == 5600


def test_demo_config_lays_the_files_settings_over_the_demos(settings: Path, tmp_path: Path) -> None:
    demo = demo_pipeline(port=5601)
    mixed = with_streaming_settings(demo, settings).config.napari_streaming
    assert mixed.viewer_memory_mb == 512 and mixed.store_dir == str(tmp_path / "runs")
    assert mixed.napari_port == 5601  # unset in the file: the demo's
    assert mixed.channel_colormaps == demo.config.napari_streaming.channel_colormaps


def test_viewer_start_refuses_a_malformed_show_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["viewer", "start", "--detach", "--show", "well=A01", "--show", "channel"]) == 1
    err = capsys.readouterr().err
    assert "--show 'channel': expected component=value[,value...]" in err
