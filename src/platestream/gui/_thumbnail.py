"""A small, contrast-stretched 8-bit view of an image file for the browser (imports no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._stream_job import read_image


def thumbnail(path: Path, side: int = 256) -> np.ndarray:
    """An 8-bit (y, x) view of ``path``'s first plane, at most ``side`` px on its longer
    edge, stretched between its 1st and 99.5th percentiles (a raw 12-bit plane looks black
    in 8 bits). Raises ValueError for an unreadable file."""
    plane = read_image(path)
    while plane.ndim > 2:
        plane = plane[0]
    step = max(1, -(-max(plane.shape) // side))  # ceil: never larger than side
    small = np.asarray(plane[::step, ::step], dtype=np.float64)
    finite = small[np.isfinite(small)]
    if finite.size == 0:
        return np.zeros(small.shape, np.uint8)
    low, high = np.percentile(finite, [1.0, 99.5])
    if high <= low:
        high = low + 1.0
    scaled = np.clip((np.nan_to_num(small, nan=low) - low) / (high - low), 0.0, 1.0)
    return np.ascontiguousarray((scaled * 255).astype(np.uint8))
