"""A synthetic ImageXpress plate: nuclei-like objects with per-well variation.

Layout (what MetaXpress exports): ``<root>/<plate>.HTD`` naming the wavelengths, and
``<root>/TimePoint_1/<plate>_<well>_s<site>_w<channel>.tif``, one 2D uint16 TIFF per image.
Each well has its own cell density and stain intensity, so wells differ visibly; channel 1
(DAPI) shows the nuclei, GFP a cytoplasm-like halo, RFP sparse puncta.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray
from scipy import ndimage

from platestream.config import normalize_well


@dataclass(frozen=True)
class SyntheticPlate:
    name: str = "demo_plate"
    rows: int = 4
    columns: int = 6
    channels: tuple[str, ...] = ("DAPI", "GFP", "RFP")
    sites: int = 4
    size: int = 512
    seed: int = 0

    @property
    def wells(self) -> list[str]:
        return [
            normalize_well((r + 1, c + 1)) for r in range(self.rows) for c in range(self.columns)
        ]


def _htd(plate: SyntheticPlate) -> str:
    side = int(np.ceil(np.sqrt(plate.sites)))
    lines = [
        '"HTSInfoFile", Version 1.0',
        f'"Description", "platestream synthetic plate {plate.name}"',
        '"TimePoints", 1',
        f'"XWells", {plate.columns}',
        f'"YWells", {plate.rows}',
        '"Sites", TRUE',
        f'"XSites", {side}',
        f'"YSites", {side}',
        '"Waves", TRUE',
        f'"NWavelengths", {len(plate.channels)}',
        *(f'"WaveName{i}", "{name}"' for i, name in enumerate(plate.channels, start=1)),
        '"EndFile"',
    ]
    return "\r\n".join(lines) + "\r\n"


def _nuclei(rng: np.random.Generator, size: int, count: int) -> tuple[NDArray[np.float32], ...]:
    """A nuclei mask image and a halo image, both float in [0, 1]."""
    centers = np.zeros((size, size), np.float32)
    ys, xs = rng.integers(8, size - 8, count), rng.integers(8, size - 8, count)
    centers[ys, xs] = rng.uniform(0.6, 1.0, count).astype(np.float32)
    radius = size / 64
    nuclei = ndimage.gaussian_filter(centers, radius) * (2 * np.pi * radius**2)
    halo = ndimage.gaussian_filter(centers, radius * 2.5) * (2 * np.pi * (radius * 2.5) ** 2)
    return np.clip(nuclei, 0, 1), np.clip(halo, 0, 1)


def render_site(plate: SyntheticPlate, well_index: int, site: int) -> dict[str, NDArray[np.uint16]]:
    """The images of one site, one per channel."""
    rng = np.random.default_rng([plate.seed, well_index, site])
    density = 20 + 5 * (well_index % 7)  # per-well variation: cell density ...
    gain = 0.6 + 0.08 * (well_index % 6)  # ... and stain intensity
    nuclei, halo = _nuclei(rng, plate.size, density)
    yy, xx = np.mgrid[0 : plate.size, 0 : plate.size].astype(np.float32) / plate.size
    illumination = 1.0 - 0.25 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2)  # vignetting to correct
    puncta = (
        ndimage.gaussian_filter(
            (rng.random((plate.size, plate.size)) > 0.9995).astype(np.float32), 1.5
        )
        * 40
    )
    signals = {0: nuclei, 1: np.clip(halo - nuclei * 0.5, 0, 1), 2: np.clip(puncta * halo, 0, 1)}
    images = {}
    for index, channel in enumerate(plate.channels):
        signal = signals.get(index % 3, nuclei)
        background = 300 + 40 * index
        image = (background + 20000 * gain * signal) * illumination
        image += rng.normal(0, 60, image.shape)
        images[channel] = np.clip(image, 0, 65535).astype(np.uint16)
    return images


def write_plate(
    plate: SyntheticPlate,
    root: Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write the plate under ``root``; returns the image paths in a stable order.
    ``progress(wells_written, wells)`` is called after each well."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{plate.name}.HTD").write_text(_htd(plate), encoding="latin-1")
    folder = root / "TimePoint_1"
    folder.mkdir(exist_ok=True)
    paths = []
    for well_index, well in enumerate(plate.wells):
        for site in range(1, plate.sites + 1):
            images = render_site(plate, well_index, site)
            for channel_number, channel in enumerate(plate.channels, start=1):
                path = folder / f"{plate.name}_{well}_s{site}_w{channel_number}.tif"
                tifffile.imwrite(path, images[channel])
                paths.append(path)
        if progress is not None:
            progress(well_index + 1, len(plate.wells))
    return paths


def plate_image_names(plate: SyntheticPlate) -> Sequence[str]:
    """The relative names ``write_plate`` writes, without writing anything."""
    return [
        f"TimePoint_1/{plate.name}_{well}_s{site}_w{number}.tif"
        for well in plate.wells
        for site in range(1, plate.sites + 1)
        for number in range(1, len(plate.channels) + 1)
    ]


SAMPLE_COLORMAPS = {"DAPI": "blue", "GFP": "green", "RFP": "magenta"}


def sample_plate() -> list[tuple[Any, dict[str, Any], str]]:
    """napari's sample data of the platestream plugin (File > Open Sample > platestream):
    2 x 3 wells x 2 sites of 256 px, a layer per channel (wells, sites, y, x), blended
    into one composite as the viewer shows a step. Plain layer data: no napari import."""
    plate = SyntheticPlate(rows=2, columns=3, sites=2, size=256)
    stacks = {
        channel: np.zeros((len(plate.wells), plate.sites, plate.size, plate.size), np.uint16)
        for channel in plate.channels
    }
    for well_index in range(len(plate.wells)):
        for site in range(1, plate.sites + 1):
            for channel, image in render_site(plate, well_index, site).items():
                stacks[channel][well_index, site - 1] = image
    return [
        (
            stack,
            {
                "name": f"sample {channel}",
                "colormap": SAMPLE_COLORMAPS.get(channel, "gray"),
                "blending": "additive",
                "axis_labels": ("Well", "Site", "Y", "X"),
                "metadata": {"wells": list(plate.wells)},
            },
            "image",
        )
        for channel, stack in stacks.items()
    ]
