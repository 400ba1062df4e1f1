"""Enums of the config, some generated at import from napari's registries.

``NapariColormap`` has one member per colormap napari knows when platestream is imported,
so a colormap added to napari (or by a plugin registered before import) is a valid config
value with no edit here. ``napari.utils.colormaps`` is imported without Qt.
"""

from __future__ import annotations

import keyword
import re
from enum import Enum
from typing import TYPE_CHECKING

from napari.utils.colormaps import AVAILABLE_COLORMAPS

from ._components import DimensionMode

NapariDimensionMode = DimensionMode


class NapariVariableSizeHandling(str, Enum):
    """What to do when images meant for one layer have different YX shapes."""

    SEPARATE_LAYERS = "separate_layers"
    PAD_TO_MAX = "pad_to_max"


class Transport(str, Enum):
    """How pixels travel: chosen from the host (AUTO), or forced."""

    AUTO = "auto"
    SHM = "shm"
    INLINE = "inline"


class StoreKind(str, Enum):
    """Where a viewer keeps the planes it receives."""

    DISK = "disk"  # an OME-Zarr run store on the viewer's disk; RAM holds a bounded cache
    MEMORY = "memory"  # RAM only: nothing is written, nothing is evicted


class StoreCodec(str, Enum):
    """How the run store compresses planes (one plane per chunk)."""

    LZ4 = "lz4"  # blosc lz4 with bit shuffling: fast, about 1.8x on microscopy planes
    ZSTD = "zstd"  # zstd level 1: a little smaller, a little slower
    NONE = "none"


class DeliveryMode(str, Enum):
    """LIVE: never wait, newest image per plane wins. LOSSLESS: wait within a budget."""

    LIVE = "live"
    LOSSLESS = "lossless"


class OutputKind(str, Enum):
    """What a pipeline function returns: an image, or a labels image (integer object ids)."""

    IMAGE = "image"
    LABELS = "labels"


def member_name(colormap: str) -> str:
    """A valid, upper-case identifier for a napari colormap name ('bop blue' -> BOP_BLUE)."""
    name = re.sub(r"\W+", "_", colormap.strip()).strip("_").upper() or "UNNAMED"
    if name[0].isdigit() or keyword.iskeyword(name.lower()):
        name = f"CMAP_{name}"
    return name


def colormap_members(names: list[str]) -> list[tuple[str, str]]:
    """(member, value) pairs in a deterministic order, collisions suffixed _2, _3."""
    members: list[tuple[str, str]] = []
    taken: set[str] = set()
    for value in sorted(names, key=lambda n: (n.lower(), n)):
        base = member_name(value)
        candidate, counter = base, 2
        while candidate in taken:
            candidate, counter = f"{base}_{counter}", counter + 1
        taken.add(candidate)
        members.append((candidate, value))
    return members


def make_colormap_enum(names: list[str]) -> type[Enum]:
    return Enum(  # type: ignore[return-value]
        "NapariColormap", colormap_members(names), type=str, module=__name__
    )


if TYPE_CHECKING:

    class NapariColormap(str, Enum):
        """One member per colormap napari knows (generated at import)."""

else:
    NapariColormap = make_colormap_enum(list(AVAILABLE_COLORMAPS))
