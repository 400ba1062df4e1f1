"""Reading a plate folder: its files, its metadata files and its images' shapes and dtypes.

The I/O half of :mod:`platestream.layering`'s parsers: this module lists files and reads
text and TIFF headers (never pixels), then hands strings to the pure parsers. The result,
a :class:`Plate`, turns into :class:`~platestream.layering.ImageItem` values per step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tifffile

from platestream.config import FrozenMap
from platestream.layering import (
    BUILTIN_PARSERS,
    FilenameParser,
    ImageItem,
    LayerKind,
    ParsedName,
    channel_names_from_htd,
    channel_names_from_index_xml,
    detect_format,
    is_image,
    parse_name,
)

# The largest metadata file worth reading; an Index.xml of a big screen is tens of MB.
MAX_METADATA_BYTES = 256 * 1024 * 1024


class PlateError(ValueError):
    """A plate folder that cannot be read."""


@dataclass(frozen=True)
class PlateImage:
    """One image file of a plate: where it is, what its name says, its shape and dtype."""

    path: Path
    name: ParsedName
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Plate:
    root: Path
    format: str
    images: tuple[PlateImage, ...]
    channel_names: Mapping[int, str]
    thumbnails: int  # thumbnail files set aside
    #: Image files left out, each with why: a name no convention reads, an empty file, a
    #: file that is not a readable TIFF. The run goes on without them and says so.
    skipped: tuple[tuple[Path, str], ...] = ()

    def items(self, steps: Sequence[tuple[int, str]] = ((0, "input"),)) -> list[ImageItem]:
        """The items a pipeline would stream for this plate: every image, for every step."""
        return [
            ImageItem(
                components=image.name.components,
                step_index=index,
                step_name=name,
                shape=image.shape,
                dtype=image.dtype,
                kind=LayerKind.IMAGE,
                extra=FrozenMap({"path": str(image.path)}),
            )
            for index, name in steps
            for image in self.images
        ]


def list_files(root: Path) -> list[str]:
    """Every file under ``root`` as a relative POSIX path, sorted; hidden files skipped."""
    if not root.is_dir():
        raise PlateError(f"{root} is not a folder")
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files.append(relative.as_posix())
    return sorted(files)


def read_text(path: Path) -> str:
    """A metadata file's text: UTF-8, or Latin-1 for the older instrument exports."""
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise PlateError(f"{path} is larger than {MAX_METADATA_BYTES // 2**20} MiB")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def channel_names(root: Path, format_name: str, files: Sequence[str]) -> dict[int, str]:
    """Channel names from the plate's metadata file, if it has one (else numbers stay)."""
    lowered = {f: f.rsplit("/", 1)[-1].lower() for f in files}
    if format_name == "imagexpress":
        found = sorted(f for f, name in lowered.items() if name.endswith(".htd"))
        return channel_names_from_htd(read_text(root / found[0])) if found else {}
    if format_name == "opera_phenix":
        ranked = {"index.idx.xml": 0, "index.xml": 1}
        indexes = sorted((ranked[n], f) for f, n in lowered.items() if n in ranked)
        return channel_names_from_index_xml(read_text(root / indexes[0][1])) if indexes else {}
    return {}


def image_header(path: Path) -> tuple[tuple[int, ...], str]:
    """(shape, dtype) of a TIFF's first series, from its header; no pixels are read."""
    if path.stat().st_size == 0:
        raise PlateError(f"{path}: an empty file (0 bytes)")
    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            return tuple(int(n) for n in series.shape), str(series.dtype)
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as err:
        raise PlateError(f"{path}: not a readable TIFF ({err})") from None


def read_plate(root: Path, parsers: Sequence[FilenameParser] = BUILTIN_PARSERS) -> Plate:
    """Detect the plate's convention, read its channel names and every image's header."""
    root = Path(root)
    files = list_files(root)
    found = detect_format(files, parsers)
    names = channel_names(root, found.format, files)
    images = []
    skipped = [(root / path, why) for path, why in found.unread]
    for parsed in found.images:
        try:
            shape, dtype = image_header(root / parsed.path)
        except PlateError as err:
            skipped.append((root / parsed.path, str(err).removeprefix(f"{root / parsed.path}: ")))
            continue
        images.append(
            PlateImage(root / parsed.path, parsed.with_channel_names(names), shape, dtype)
        )
    if not images:
        reasons = "; ".join(f"{path}: {why}" for path, why in skipped[:5])
        raise PlateError(f"{root}: no readable image ({reasons})")
    return Plate(
        root,
        found.format,
        tuple(images),
        FrozenMap(names),
        len(found.thumbnails),
        tuple(skipped),
    )


def skipped_report(plate: Plate, limit: int = 20) -> str:
    """The files a plate left out, one per line with why (the first ``limit``), or ''."""
    if not plate.skipped:
        return ""
    lines = [f"skipped {len(plate.skipped)} image file(s) that cannot be read:"]
    lines += [f"  {os.fsdecode(path)}: {why}" for path, why in plate.skipped[:limit]]
    if len(plate.skipped) > limit:
        lines.append(f"  ... and {len(plate.skipped) - limit} more")
    return "\n".join(lines)


def plate_path_parser(root: str | Path) -> Callable[[str], dict[str, Any]]:
    """A path target's components, as a plate whose root is known gives them: read by the
    plate's naming convention, channel numbers named from its metadata file (an HTD, an
    Index.xml). For ``NapariStreamingBackend(path_parser=...)`` and ``FileManager``."""
    root = Path(root)
    files = list_files(root)
    images = [f for f in files if is_image(f)]
    names: dict[int, str] = {}
    if images:
        names = channel_names(root, parse_name(images[0]).format, files)

    def parse(path: str) -> dict[str, Any]:
        return dict(parse_name(path).with_channel_names(names).components)

    return parse
