"""Reading plate folders: file listing, metadata files, TIFF headers, items per step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from platestream.layering import LayerKind
from platestream.pipeline import PlateError, read_plate, skipped_report

from ..commands import run_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plates"


def tiff(path: Path, shape: tuple[int, ...] = (16, 16), dtype: str = "uint16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.zeros(shape, dtype=dtype))


def test_an_imagexpress_folder_with_timepoint_and_zstep_folders(tmp_path: Path) -> None:
    (tmp_path / "My Plate.HTD").write_bytes(
        '"WaveName1", "DAPI"\n"WaveName2", "Cy5 µ"\n'.encode("latin-1")
    )
    for t in (1, 2):
        for z in (1, 2):
            tiff(tmp_path / f"TimePoint_{t}" / f"ZStep_{z}" / "My Plate_C03_s1_w1.TIF")
            tiff(
                tmp_path / f"TimePoint_{t}" / f"ZStep_{z}" / "My Plate_C03_s1_w2.tif",
                dtype="uint8",
            )
    tiff(tmp_path / "TimePoint_1" / "ZStep_1" / "My Plate_C03_s1_w1_thumb.tif", (4, 4))
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    plate = read_plate(tmp_path)
    assert plate.format == "imagexpress" and plate.thumbnails == 1
    assert dict(plate.channel_names) == {1: "DAPI", 2: "Cy5 µ"}
    seen = {
        (
            i.name.components["channel"],
            i.name.components["timepoint"],
            i.name.components["z_index"],
            i.dtype,
        )
        for i in plate.images
    }
    assert seen == {
        (c, t, z, d)
        for c, d in (("DAPI", "uint16"), ("Cy5 µ", "uint8"))
        for t in (1, 2)
        for z in (1, 2)
    }
    assert {i.shape for i in plate.images} == {(16, 16)}


def test_items_per_step_carry_the_file_path(tmp_path: Path) -> None:
    tiff(tmp_path / "r01c02f01p01-ch1sk1fk1fl1.tiff", (8, 12))
    plate = read_plate(tmp_path)
    items = plate.items([(1, "blur"), (2, "segment")])
    assert [(i.step_index, i.step_name) for i in items] == [(1, "blur"), (2, "segment")]
    assert items[0].shape == (8, 12) and items[0].kind is LayerKind.IMAGE
    assert items[0].components["well"] == "A02" and items[0].components["channel"] == 1
    assert items[0].extra["path"] == str(tmp_path / "r01c02f01p01-ch1sk1fk1fl1.tiff")


def test_the_example_plates_read_with_their_channel_names() -> None:
    ix = read_plate(EXAMPLES / "imagexpress_demo")
    assert (ix.format, len(ix.images), ix.thumbnails) == ("imagexpress", 16, 16)
    assert {i.name.components["channel"] for i in ix.images} == {"DAPI", "FITC"}
    opera = read_plate(EXAMPLES / "opera_phenix_demo")
    assert (opera.format, len(opera.images)) == ("opera_phenix", 36)
    assert dict(opera.channel_names) == {1: "Hoechst 33342", 2: "Alexa 488"}


def test_unreadable_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(PlateError, match="not a folder"):
        read_plate(tmp_path / "missing")
    (tmp_path / "plate_A01_s1_w1.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(PlateError, match="not a readable TIFF"):
        read_plate(tmp_path)


def bad_plate(root: Path) -> Path:
    """Two good images, a corrupt TIFF, an empty file and a name no convention reads."""
    tiff(root / "plate_A01_s1_w1.tif")
    tiff(root / "plate_A02_s1_w1.tif")
    (root / "plate_A03_s1_w1.tif").write_bytes(b"not a tiff at all")
    (root / "plate_A04_s1_w1.tif").write_bytes(b"")
    tiff(root / "notes about the run.tif")
    return root


def test_unreadable_files_are_skipped_with_why_and_the_rest_is_read(tmp_path: Path) -> None:
    plate = read_plate(bad_plate(tmp_path))
    assert sorted(i.path.name for i in plate.images) == [
        "plate_A01_s1_w1.tif",
        "plate_A02_s1_w1.tif",
    ]
    why = {path.name: reason for path, reason in plate.skipped}
    assert "not a readable TIFF" in why["plate_A03_s1_w1.tif"]
    assert why["plate_A04_s1_w1.tif"] == "an empty file (0 bytes)"
    assert "notes about the run.tif" in why["notes about the run.tif"]
    report = skipped_report(plate)
    assert report.startswith("skipped 3 image file(s)") and "plate_A03_s1_w1.tif" in report


def test_a_run_over_a_plate_with_bad_files_goes_on_and_says_so(tmp_path: Path) -> None:
    plate = bad_plate(tmp_path / "plate")
    pipeline = tmp_path / "copy.toml"
    pipeline.write_text(
        "[pipeline]\nname = 'copy'\n[[steps]]\nname = 'copy'\n"
        "[[steps.functions]]\nfunction = 'numpy:copy'\n"
    )
    result = run_module(
        "platestream", "run", str(pipeline), "--plate", str(plate), "--no-stream", timeout_s=300
    )
    assert result.returncode == 2, result.stderr  # every well ran; some files were skipped
    assert "skipped 3 image file(s)" in result.stderr and "Traceback" not in result.stderr
    assert "2/2 wells done" in result.stdout
    planned = run_module("platestream", "layers", "plan", str(plate))
    assert planned.returncode == 0 and "skipped 3 image file(s)" in planned.stderr
