"""Write the small example plate folders next to this script (run it to regenerate them).

    python examples/plates/make_examples.py

* ``imagexpress_demo``: a MetaXpress export of 4 wells x 2 sites x 2 wavelengths, named the
  way real exports are (a plate name with a space, a GUID glued to the wavelength, a
  ``_thumb`` twin of every image, a ``TimePoint_1`` folder, upper-case ``.TIF``) with the
  plate's ``.HTD`` naming the wavelengths DAPI and FITC.
* ``opera_phenix_demo``: a Harmony export of 3 wells x 2 fields x 3 planes x 2 channels in
  ``Images/`` with the ``Index.idx.xml`` naming the channels.

Images are 64x64 uint16 with a few synthetic nuclei; the output is deterministic.
"""

from __future__ import annotations

import shutil
import uuid
import zlib
from pathlib import Path

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
SIZE = 64
NAMESPACE = uuid.UUID("6f2b1c1e-2a4b-4f0e-9c7d-5a1e3b9d8f20")


def nuclei(name: str, channel: int, size: int = SIZE) -> np.ndarray:
    """A plane of Gaussian blobs, seeded by the file name so reruns give identical bytes."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    y, x = np.mgrid[0:size, 0:size]
    plane = np.full((size, size), 200.0)
    radius = 3.0 if channel == 1 else 6.0  # nuclear stain vs. a wider cytoplasmic one
    for cy, cx in rng.uniform(6, size - 6, size=(6, 2)):
        plane += 3000.0 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
    plane += rng.normal(0, 40, size=plane.shape)
    return np.clip(plane, 0, 65535).astype(np.uint16)


def write_imagexpress(root: Path) -> None:
    plate = "Demo Screen"
    folder = root / "TimePoint_1"
    folder.mkdir(parents=True)
    (root / f"{plate}.HTD").write_text(
        '"HTSInfoFile", Version 1.0\n"Description", "platestream example"\n'
        '"TimePoints", 1\n"ZSeries", FALSE\n"XWells", 24\n"YWells", 16\n'
        '"Sites", TRUE\n"XSites", 2\n"YSites", 1\n"Waves", TRUE\n"NWavelengths", 2\n'
        '"WaveName1", "DAPI"\n"WaveName2", "FITC"\n"WaveCollect1", 1\n"WaveCollect2", 1\n'
        '"EndFile"\n',
        encoding="latin-1",
    )
    for well in ("A01", "A02", "B01", "B02"):
        for site in (1, 2):
            for wave in (1, 2):
                stem = f"{plate}_{well}_s{site}_w{wave}"
                guid = str(uuid.uuid5(NAMESPACE, stem)).upper()
                image = nuclei(stem, wave)
                tifffile.imwrite(folder / f"{stem}{guid}.TIF", image)
                thumb_guid = str(uuid.uuid5(NAMESPACE, stem + "_thumb")).upper()
                tifffile.imwrite(folder / f"{stem}_thumb{thumb_guid}.TIF", image[::4, ::4])


def write_opera_phenix(root: Path) -> None:
    folder = root / "Images"
    folder.mkdir(parents=True)
    channels = {1: "Hoechst 33342", 2: "Alexa 488"}
    records = []
    for row, col in ((2, 2), (2, 3), (3, 2)):
        for field in (1, 2):
            for plane in (1, 2, 3):
                for channel, name in channels.items():
                    url = f"r{row:02d}c{col:02d}f{field:02d}p{plane:02d}-ch{channel}sk1fk1fl1.tiff"
                    tifffile.imwrite(folder / url, nuclei(url, channel))
                    records.append(
                        f'    <Image Version="1"><id>{row:02d}{col:02d}K1F{field}P{plane}R{channel}'
                        f"</id><URL>{url}</URL><Row>{row}</Row><Col>{col}</Col>"
                        f"<FieldID>{field}</FieldID><PlaneID>{plane}</PlaneID>"
                        f"<TimepointID>0</TimepointID><ChannelID>{channel}</ChannelID>"
                        f"<ChannelName>{name}</ChannelName></Image>"
                    )
    entries = "\n".join(
        f'      <Entry ChannelID="{c}"><ChannelName>{n}</ChannelName>'
        f"<ImageSizeX>{SIZE}</ImageSizeX><ImageSizeY>{SIZE}</ImageSizeY></Entry>"
        for c, n in channels.items()
    )
    (folder / "Index.idx.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<EvaluationInputData Version="2" '
        'xmlns="43B2A954-E3C3-47E1-B392-6635266B0DD3/HarmonyV6">\n'
        "  <Plates><Plate><PlateID>DEMO-1</PlateID><PlateRows>8</PlateRows>"
        "<PlateColumns>12</PlateColumns></Plate></Plates>\n"
        f"  <Maps>\n    <Map>\n{entries}\n    </Map>\n  </Maps>\n"
        "  <Images>\n" + "\n".join(records) + "\n  </Images>\n</EvaluationInputData>\n",
        encoding="utf-8",
    )


def main() -> None:
    for name, write in (
        ("imagexpress_demo", write_imagexpress),
        ("opera_phenix_demo", write_opera_phenix),
    ):
        target = HERE / name
        if target.exists():
            shutil.rmtree(target)
        write(target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
