from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from platestream.cli import main
from platestream.cli.config_cmd import show_table
from platestream.config import NapariStreamingConfig, load_pipeline

from ..commands import run_module

EXAMPLE = Path(__file__).parents[2] / "examples" / "nuclei_qc.toml"


def run_show(path: Path, classes: Any, step: str | None = None) -> str:
    return show_table(load_pipeline(path, classes), classes, step, None)


def test_show_prints_every_field_with_value_and_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", str(EXAMPLE), "--step", "smooth"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("napari_")
    }
    lines = EXAMPLE.read_text().splitlines()

    def source_line(origin: str) -> str:
        return lines[int(origin.rsplit(":", 1)[1]) - 1]

    assert rows["napari_streaming.colormap"][0] == "viridis"
    assert source_line(rows["napari_streaming.colormap"][1]).startswith('colormap = "viridis"')
    assert rows["napari_streaming.site_mode"][0] == "slice"
    assert rows["napari_streaming.napari_port"][0] == "5555"
    assert source_line(rows["napari_streaming.napari_port"][1]).startswith("napari_port = 5555")
    assert rows["napari_streaming.transport"] == ["auto", "default"]
    assert rows["napari_streaming.store"] == ["disk", "default"]
    assert rows["napari_streaming.viewer_memory_mb"] == ["2048", "default"]
    fields = dataclasses.fields(NapariStreamingConfig)
    assert sorted(rows) == sorted(f"napari_streaming.{f.name}" for f in fields)


def test_show_says_when_a_value_is_shadowed(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's blur step sets viridis, which channel_colormaps hides for its channels."""
    demo = Path(__file__).parents[2] / "examples" / "demo.toml"
    assert main(["config", "show", str(demo), "--step", "blur"]) == 0
    (note,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert "napari_streaming.colormap = viridis" in note and "DAPI, GFP, RFP" in note
    assert "channel_colormaps comes first" in note
    assert main(["config", "show", str(demo), "--step", "background"]) == 0
    assert "note:" not in capsys.readouterr().out  # colormap left at its default there


def test_show_unknown_step_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", str(EXAMPLE), "--step", "smoth"]) == 1
    assert "no step 'smoth' (did you mean 'smooth'?)" in capsys.readouterr().err


def test_validate_reports_misspelled_key_and_wrong_enum_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[pipeline]\nname = 'qc'\n[pipeline.napari_streaming]\n"
        "colourmap = 'gray'\nchannel_mode = 'slices'\n"
    )
    result = run_module("platestream", "config", "validate", str(bad))
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"{bad}:4:1: pipeline.napari_streaming.colourmap: unknown key 'colourmap' "
        "(did you mean 'colormap'?)",
        f"{bad}:5:1: pipeline.napari_streaming.channel_mode: expected one of 'slice', 'stack'; "
        "found 'slices' (did you mean 'slice'?)",
    ]


def test_validate_clean_file_summarises(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ok: 4 steps, 4 functions" in out and "segment (nuclei_mask)" in out


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    committed = Path(__file__).parents[2] / "src/platestream/schemas/json/pipeline-file.schema.json"
    assert printed == json.loads(committed.read_text())


def test_init_writes_a_starter_that_validates_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "pipeline.toml"
    assert main(["config", "init", str(target)]) == 0
    assert target.read_text().startswith("#:schema ./platestream-pipeline.schema.json")
    assert (target.parent / "platestream-pipeline.schema.json").is_file()
    assert main(["config", "validate", str(target)]) == 0
    assert main(["config", "init", str(target)]) == 1
    assert "not overwritten" in capsys.readouterr().err


def test_validate_says_a_file_without_steps_has_none_and_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    result = run_module("platestream", "config", "validate", str(empty))
    assert result.returncode == 1
    assert "has no steps" in result.stderr and "ok" not in result.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("lossless_budget_s = inf", "at most 86400"),
        ("lossless_budget_s = nan", "at most 86400"),
        ("shm_pool_mb = 100000000", "at most 65536"),
    ],
)
def test_validate_refuses_unbounded_budgets(tmp_path: Path, line: str, expected: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f"[pipeline.napari_streaming]\n{line}\n[[steps]]\nname = 'a'\n"
        "[[steps.functions]]\nfunction = 'numpy:copy'\n"
    )
    result = run_module("platestream", "config", "validate", str(bad))
    assert result.returncode == 1
    assert expected in result.stderr + result.stdout
    assert "bad.toml:2" in result.stderr + result.stdout  # names the file and line
