"""``platestream layers plan``: the layer table a user sees before streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from platestream.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plates"


def table(text: str) -> dict[str, list[str]]:
    """Layer name -> the other columns, from the printed table."""
    lines = text.splitlines()
    header = lines[1]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    rows = {}
    for line in lines[3:-1]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = cells[1:]
    return rows


def test_the_imagexpress_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "plan", str(EXAMPLES / "imagexpress_demo")]) == 0
    out = capsys.readouterr().out
    assert "imagexpress, 16 images (16 thumbnails skipped); channels 1=DAPI, 2=FITC" in out
    axes = "Well[A01,A02,B01,B02] x Site[001,002] x Timepoint[001]"
    assert table(out) == {
        "Step_00_input_Channel_DAPI": ["image", "4x2x1x64x64", axes, "uint16", "8/8"],
        "Step_00_input_Channel_FITC": ["image", "4x2x1x64x64", axes, "uint16", "8/8"],
    }
    assert out.rstrip().endswith("2 layers")


def test_steps_and_a_pipeline_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[pipeline]\nname = "demo"\n[pipeline.napari_streaming]\n'
        'well_mode = "slice"\nchannel_mode = "stack"\n'
        '[[steps]]\nname = "blur"\n[[steps]]\nname = "segment"\n'
    )
    assert (
        main(["layers", "plan", str(EXAMPLES / "opera_phenix_demo"), "--config", str(config)]) == 0
    )
    rows = table(capsys.readouterr().out)
    assert sorted(rows) == [
        f"Step_{i:02d}_{s}_Well_{w}"
        for i, s in ((1, "blur"), (2, "segment"))
        for w in ("B02", "B03", "C02")
    ]
    assert (
        rows["Step_01_blur_Well_B02"][2]
        == "Channel[Alexa 488,Hoechst 33342] x Site[001,002] x Timepoint[001] x Z[001,002,003]"
    )
    assert (
        main(
            [
                "layers",
                "plan",
                str(EXAMPLES / "opera_phenix_demo"),
                "--config",
                str(config),
                "--step",
                "7:raw",
            ]
        )
        == 0
    )
    assert sorted(table(capsys.readouterr().out))[0] == "Step_07_raw_Well_B02"


def test_variable_sizes_in_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for well, shape in (("A01", (32, 32)), ("A02", (16, 24))):
        tifffile.imwrite(tmp_path / f"p_{well}_s1_w1.tif", np.zeros(shape, "uint16"))
    assert main(["layers", "plan", str(tmp_path)]) == 0
    rows = table(capsys.readouterr().out)
    assert {name: cells[1] for name, cells in rows.items()} == {
        "Step_00_input_Well_A01_Channel_1": "1x32x32",
        "Step_00_input_Well_A02_Channel_1": "1x16x24",
    }
    padded = tmp_path.parent / "pad.toml"
    padded.write_text('[pipeline.napari_streaming]\nvariable_size_handling = "pad_to_max"\n')
    assert main(["layers", "plan", str(tmp_path), "--config", str(padded)]) == 0
    assert {n: c[1] for n, c in table(capsys.readouterr().out).items()} == {
        "Step_00_input_Channel_1": "2x1x32x32"
    }


def test_a_custom_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for site in (1, 2):
        tifffile.imwrite(tmp_path / f"scan-B7-field{site}-GFP.tif", np.zeros((8, 8), "uint8"))
    pattern = r"scan-(?P<well>[A-H]\d+)-field(?P<site>\d+)-(?P<channel>\w+)\.tif"
    assert main(["layers", "plan", str(tmp_path), "--pattern", pattern]) == 0
    assert table(capsys.readouterr().out) == {
        "Step_00_input_Channel_GFP": [
            "image",
            "1x2x8x8",
            "Well[B07] x Site[001,002]",
            "uint8",
            "2/2",
        ],
    }


def test_errors_exit_non_zero_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[pipeline.napari_streaming]\nchanel_mode = "stack"\n')
    assert main(["layers", "plan", str(EXAMPLES / "imagexpress_demo"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:1: pipeline.napari_streaming.chanel_mode: unknown key" in err
    assert "did you mean 'channel_mode'" in err
    tifffile.imwrite(tmp_path / "mystery.tif", np.zeros((4, 4), "uint8"))
    assert main(["layers", "plan", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "'mystery.tif'" in err and "imagexpress" in err and "opera_phenix" in err
    assert main(["layers", "plan", str(tmp_path), "--step", "3:"]) == 2


def test_each_step_and_function_is_planned_with_its_own_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[pipeline.napari_streaming]\ncolormap = "gray"\n'
        '[[steps]]\nname = "smooth"\n[steps.napari_streaming]\nsite_mode = "slice"\n'
        '[[steps.functions]]\nfunction = "m:f"\n'
        '[[steps]]\nname = "seg"\n'
        '[[steps.functions]]\nfunction = "m:blur"\n'
        '[[steps.functions]]\nfunction = "m:mask"\noutput = "labels"\n'
    )
    folder = EXAMPLES / "imagexpress_demo"
    assert main(["layers", "plan", str(folder), "--config", str(config)]) == 0
    rows = table(capsys.readouterr().out)
    smooth = sorted(n for n in rows if n.startswith("Step_01_smooth"))
    assert smooth == [
        f"Step_01_smooth_Channel_{c}_Site_{s}" for c in ("DAPI", "FITC") for s in ("001", "002")
    ]
    assert rows["Step_02_seg_blur_Channel_DAPI"][0] == "image"
    assert rows["Step_02_seg_mask_Channel_DAPI_Labels"][0] == "labels"
    assert "Site[001,002]" in rows["Step_02_seg_mask_Channel_DAPI_Labels"][2]


def test_display_fields_alone_are_refused_with_where_they_belong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What --config's help promises: a pipeline file's [pipeline.napari_streaming]."""
    bare = tmp_path / "fields.toml"
    bare.write_text('channel_mode = "stack"\n')
    assert main(["layers", "plan", str(EXAMPLES / "imagexpress_demo"), "--config", str(bare)]) == 2
    assert f"{bare}:1:1: channel_mode: unknown key" in capsys.readouterr().err
    wrapped = tmp_path / "pipeline.toml"
    wrapped.write_text('[pipeline.napari_streaming]\nchannel_mode = "stack"\n')
    assert (
        main(["layers", "plan", str(EXAMPLES / "imagexpress_demo"), "--config", str(wrapped)]) == 0
    )
    assert list(table(capsys.readouterr().out)) == ["Step_00_input"]  # channels stacked
