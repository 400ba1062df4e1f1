"""Helpers for viewer tests: plate images, waiting for the viewer, reading snapshots."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from platestream.backend import request_once
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.schemas import LayersReport, LayersRequest
from platestream.viewer.manager._visualizer import NapariStreamVisualizer

from ..waiting import wait_until

SQUARE = (slice(8, 24), slice(40, 56))  # where the bright square is, in a 64 x 64 image
BACKGROUND, BRIGHT = 100, 1000


def config(port: int, **fields: Any) -> Any:
    """Lossless streaming to ``port``; no plate overview unless asked (these tests look at
    the detailed layers; the overview's own tests turn it on)."""
    fields.setdefault("overview", False)
    return NapariStreamingConfig(napari_port=port, delivery="lossless", **fields)


def plate(
    steps: list[tuple[int, str]], wells: list[str], channels: list[int], sites: list[int]
) -> tuple[list[np.ndarray], list[ImageItem]]:
    """64 x 64 uint16 images at 100 (one corner pixel 0, so first-show contrast limits are
    (0, 1000) and the background shows dim); A01 site 1 has a 1000 square at ``SQUARE``."""
    arrays, items = [], []
    for step in steps:
        for well in wells:
            for channel in channels:
                for site in sites:
                    array = np.full((64, 64), BACKGROUND, np.uint16)
                    array[-1, -1] = 0
                    array[SQUARE] = BRIGHT if well == "A01" and site == 1 else BACKGROUND * 2
                    components = {"well": well, "channel": channel, "site": site}
                    items.append(ImageItem(components, step[0], step[1], array.shape, "uint16"))
                    arrays.append(array)
    return arrays, items


def wait_received(visualizer: NapariStreamVisualizer, count: int, timeout_s: float = 30) -> None:
    def received() -> bool:
        status = visualizer.status()
        return status is not None and status.images >= count

    wait_until(received, timeout_s, f"{count} images received")


def layers(port: int) -> LayersReport:
    reply = request_once("127.0.0.1", port, LayersRequest(), timeout_s=20)
    assert isinstance(reply.message, LayersReport), reply.message
    return reply.message


def read_png(data: bytes) -> np.ndarray:
    """RGBA pixels of a PNG (decoded with Qt's image reader: no extra dependency)."""
    from qtpy.QtGui import QImage

    image = QImage.fromData(data, "PNG").convertToFormat(QImage.Format.Format_RGBA8888)
    height, width = image.height(), image.width()
    buffer = image.constBits()
    buffer.setsize(height * image.bytesPerLine())
    rows = np.frombuffer(buffer, np.uint8).reshape(height, image.bytesPerLine())
    return rows[:, : 4 * width].reshape(height, width, 4).copy()


def png_of(path: Any) -> np.ndarray:
    with open(path, "rb") as raw:
        return read_png(io.BytesIO(raw.read()).getvalue())
