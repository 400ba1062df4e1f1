from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from platestream.pipeline import _functions as functions
from platestream.pipeline._synthetic import (
    SyntheticPlate,
    plate_image_names,
    render_site,
    write_plate,
)

SMALL = SyntheticPlate(name="t", rows=2, columns=2, channels=("DAPI", "GFP"), sites=2, size=96)


def test_plate_is_written_in_imagexpress_layout(tmp_path: Path) -> None:
    paths = write_plate(SMALL, tmp_path)
    names = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert names == sorted(plate_image_names(SMALL))
    assert "TimePoint_1/t_B02_s2_w2.tif" in names
    htd = (tmp_path / "t.HTD").read_text(encoding="latin-1")
    assert '"WaveName1", "DAPI"' in htd and '"WaveName2", "GFP"' in htd
    image = tifffile.imread(paths[0])
    assert image.shape == (96, 96) and image.dtype == np.uint16


def test_wells_differ_and_sites_are_reproducible() -> None:
    a1 = render_site(SMALL, 0, 1)["DAPI"]
    assert np.array_equal(a1, render_site(SMALL, 0, 1)["DAPI"])
    b1 = render_site(SMALL, 3, 1)["DAPI"]
    assert not np.array_equal(a1, b1)
    assert float(b1.mean()) != pytest.approx(float(a1.mean()), rel=1e-3)


def test_threshold_labels_counts_the_objects_it_was_given() -> None:
    image = np.zeros((64, 64), np.float32)
    image[5:15, 5:15] = 100
    image[30:40, 30:45] = 120
    image[60:62, 60:62] = 110  # 4 pixels: below min_size
    labels = functions.threshold_labels(image, min_size=10)
    assert labels.dtype == np.int32 and labels.max() == 2
    assert (labels[10, 10] > 0) and (labels[35, 35] > 0) and labels[61, 61] == 0
    with pytest.raises(ValueError, match="expected 'otsu' or 'value'"):
        functions.threshold_labels(image, method="magic")


def test_background_subtraction_removes_a_ramp_but_keeps_spots() -> None:
    ramp = np.tile(np.linspace(100, 1000, 128, dtype=np.float32), (128, 1))
    ramp[60:64, 60:64] += 5000
    flat = functions.subtract_background(ramp, radius=8)
    assert flat[10, 10] < 50 and flat[62, 62] > 4000


def test_flatfield_and_blur_keep_shape_and_mean() -> None:
    rng = np.random.default_rng(1)
    image = rng.uniform(500, 600, (64, 64)).astype(np.uint16)
    corrected = functions.flatfield_correct(image, sigma=10)
    assert corrected.shape == image.shape
    assert float(corrected.mean()) == pytest.approx(float(image.mean()), rel=1e-3)
    blurred = functions.gaussian_blur(image, sigma=2)
    assert blurred.std() < image.astype(np.float32).std()
