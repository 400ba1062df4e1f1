"""Streaming chosen plate images to a viewer, off the GUI thread (imports no Qt).

A job reads each TIFF (``tifffile``), sends the images in small batches through the
viewer's ``NapariStreamVisualizer`` - the same handle a script holds, so a viewer that is
still starting gets them from its bounded queue once it answers - and reports its
progress after every batch. The items carry the plate's parsed components and channel
names as step 0 ``input``: they land in the layers a pipeline's input would make.
Unreadable files are skipped with their reason; the rest go on. Cancelling stops between
batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from platestream.backend import SaveReport
from platestream.config import FrozenMap
from platestream.layering import ImageItem, LayerKind
from platestream.pipeline import PlateImage

STEP = (0, "input")
BATCH_IMAGES = 8
BATCH_BYTES = 64 << 20


@dataclass
class JobResult:
    """What a job did: images sent, files skipped (path, why), drops the producer counted,
    and whether it was cancelled."""

    total: int
    sent: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    dropped: int = 0
    cancelled: bool = False
    error: str = ""

    def summary(self) -> str:
        parts = [f"sent {self.sent} of {self.total}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} unreadable file(s) skipped")
        if self.dropped:
            parts.append(f"{self.dropped} dropped (see the viewer's status)")
        if self.cancelled:
            parts.append("cancelled")
        if self.error:
            parts.append(self.error)
        return ", ".join(parts)


def item_for(image: PlateImage, array: np.ndarray) -> ImageItem:
    """The item a pipeline's input step would stream for this file."""
    return ImageItem(
        components=image.name.components,
        step_index=STEP[0],
        step_name=STEP[1],
        shape=tuple(int(n) for n in array.shape),
        dtype=str(array.dtype),
        kind=LayerKind.IMAGE,
        extra=FrozenMap({"path": str(image.path)}),
    )


def layout_of(images: Sequence[PlateImage]) -> dict[str, list[Any]]:
    """Component -> the values these images carry, so the viewer sizes each layer once."""
    layout: dict[str, list[Any]] = {}
    for image in images:
        for component, value in image.name.components.items():
            values = layout.setdefault(component, [])
            if value not in values:
                values.append(value)
    return layout


def read_image(path: Path) -> np.ndarray:
    """The pixels of a plate's TIFF; ValueError saying why it cannot be read."""
    try:
        array = np.asarray(tifffile.imread(path))
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as err:
        raise ValueError(f"not a readable TIFF ({err})") from None
    if array.ndim < 2 or array.size == 0:
        raise ValueError(f"no image in it (shape {array.shape})")
    return array


def stream_images(
    images: Sequence[PlateImage],
    visualizer: Any,
    progress: Callable[[int, int], None],
    cancel: threading.Event,
) -> JobResult:
    """Send ``images`` through ``visualizer`` (``save_batch``); ``progress(done, total)``
    after every batch, ``done`` counting sent and skipped files."""
    result = JobResult(total=len(images))
    visualizer.declare_layout(layout_of(images))
    arrays: list[np.ndarray] = []
    items: list[ImageItem] = []

    def flush() -> None:
        if arrays:
            report = visualizer.save_batch(list(arrays), list(items))
            if isinstance(report, SaveReport):
                result.dropped += report.shortfall
            result.sent += len(arrays)
            arrays.clear()
            items.clear()
        progress(result.sent + len(result.skipped), result.total)

    for image in images:
        if cancel.is_set():
            result.cancelled = True
            break
        try:
            array = read_image(image.path)
        except ValueError as err:
            result.skipped.append((image.path, str(err)))
            continue
        arrays.append(array)
        items.append(item_for(image, array))
        if len(arrays) >= BATCH_IMAGES or sum(a.nbytes for a in arrays) >= BATCH_BYTES:
            flush()
    if not result.cancelled:
        flush()
    else:
        arrays.clear()
        progress(result.sent + len(result.skipped), result.total)
    return result
