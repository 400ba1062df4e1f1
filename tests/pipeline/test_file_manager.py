"""FileManager without a viewer: TIFFs on disk and an OME-Zarr run store, the channels
named from the plate's metadata when the plate is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import zarr

from platestream.pipeline import FileManager, plate_path_parser

PLATE = Path(__file__).resolve().parents[2] / "examples" / "plates" / "imagexpress_demo"


def _images() -> list[Path]:
    return sorted(p for p in (PLATE / "TimePoint_1").iterdir() if "_thumb" not in p.name)


def test_a_known_plate_names_the_channels_of_its_paths() -> None:
    parse = plate_path_parser(PLATE)
    names = {parse(str(path))["channel"] for path in _images()}
    assert names == {"DAPI", "FITC"}  # from "Demo Screen.HTD", not 1 and 2


def test_disk_and_zarr_in_one_call_the_store_read_back(tmp_path: Path) -> None:
    paths = _images()[:4]
    data = [tifffile.imread(path) for path in paths]
    out = [tmp_path / "tiff" / path.name for path in paths]
    with FileManager(zarr_store=tmp_path / "run", plate_root=PLATE) as files:
        stored = files.save_batch(data, paths, backend="zarr", step_name="raw")
        written = files.save_batch(data, out, backend="disk")
    assert stored == {"zarr": 4} and written == {"disk": 4}
    for path, plane in zip(out, data, strict=True):
        np.testing.assert_array_equal(tifffile.imread(path), plane)
    (plate_dir,) = [p for p in (tmp_path / "run").iterdir() if (p / "zarr.json").exists()]
    root = zarr.open_group(plate_dir, mode="r")
    image = root["A/1/0"]
    labels = [channel["label"] for channel in image.attrs["ome"]["omero"]["channels"]]
    assert labels == ["DAPI", "FITC"]
    import yaozarrs

    yaozarrs.validate_zarr_store(str(plate_dir))
