"""Regenerate docs/images/overview.png: a 96-well plate (4 sites, 3 channels) streaming
into a real viewer, 80 wells arrived, its plate overview as the viewer shows it.

    xvfb-run -a python scripts/overview_picture.py [OUT.png]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from platestream.bench.viewer import _free_port
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.pipeline._synthetic import SyntheticPlate, render_site
from platestream.store import row_name
from platestream.viewer.manager import NapariStreamVisualizer


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/overview.png")
    plate = SyntheticPlate(rows=8, columns=12, sites=4, size=256)
    wells = [f"{row_name(r)}{c + 1:02d}" for r in range(plate.rows) for c in range(plate.columns)]
    colormaps = {"DAPI": "blue", "GFP": "green", "RFP": "magenta"}
    with tempfile.TemporaryDirectory() as runs:
        config = NapariStreamingConfig(
            napari_port=_free_port(),
            delivery="lossless",
            store_dir=runs,
            channel_colormaps=colormaps,
        )
        with NapariStreamVisualizer(config, title="96-well screen", persistent=False) as viewer:
            viewer.start_viewer(async_mode=False)
            viewer.declare_layout(
                {"well": wells, "site": range(1, plate.sites + 1), "channel": plate.channels}
            )
            for index, well in enumerate(wells[:80]):  # the last 16 wells: not yet
                arrays, items = [], []
                for site in range(1, plate.sites + 1):
                    for channel, pixels in render_site(plate, index, site).items():
                        components = {"well": well, "site": site, "channel": channel}
                        items.append(ImageItem(components, 1, "raw", pixels.shape, "uint16"))
                        arrays.append(pixels)
                viewer.save_batch(arrays, items)
            total = 80 * plate.sites * len(plate.channels)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                status = viewer.status(timeout_s=5.0)
                if status is not None and status.state.display.displayed >= total:
                    break
                threading.Event().wait(0.2)
            else:
                raise TimeoutError("the viewer did not show the plate in 5 minutes")
            viewer.snapshot(out, timeout_s=120)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
