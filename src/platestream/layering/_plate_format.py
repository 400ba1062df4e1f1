"""Which convention a plate folder uses, and the channel names its metadata files give.

Pure functions of strings: a list of relative paths, the text of an ImageXpress ``.HTD``
file, the text of an Opera Phenix ``Index.xml`` / ``Index.idx.xml``. Reading the folder is
the caller's job (see ``platestream.pipeline._plate_folder``).
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._filenames import (
    BUILTIN_PARSERS,
    FileNameError,
    FilenameParser,
    ParsedName,
    UnrecognizedNameError,
    is_image,
    split_path,
)

# Metadata files that vouch for a convention when two could read every name.
METADATA_HINTS = {
    "imagexpress": re.compile(r"\.htd$", re.IGNORECASE),
    "opera_phenix": re.compile(r"^index(\.idx)?\.xml$", re.IGNORECASE),
}


class PlateMetadataError(ValueError):
    """A metadata file that cannot be read."""


@dataclass(frozen=True)
class PlateFiles:
    """A plate folder's images read in one convention (thumbnails set aside)."""

    format: str
    images: tuple[ParsedName, ...]
    thumbnails: tuple[ParsedName, ...]
    #: Image files whose names no convention reads, each with why: left out, not fatal.
    unread: tuple[tuple[str, str], ...] = ()


def detect_format(
    paths: Sequence[str], parsers: Sequence[FilenameParser] = BUILTIN_PARSERS
) -> PlateFiles:
    """Read a plate's image paths with the one convention that reads them all.

    Non-image files are ignored. A name that no convention reads is left out and listed in
    ``unread`` with why (a stray file must not stop a screen). When several conventions read
    every other name, a metadata file of one of them (an ``.HTD``, an ``Index.xml``) decides;
    otherwise it is an error, as is a folder that mixes conventions or one whose images no
    convention reads at all.
    """
    images = sorted(p for p in paths if is_image(p))
    if not images:
        raise FileNameError("no .tif/.tiff images among the plate's files")
    readings = {parser.name: _read_all(parser, images) for parser in parsers}
    unreadable = [i for i in range(len(images)) if all(readings[p][i] is None for p in readings)]
    if len(unreadable) == len(images):
        raise _explain(images, parsers, readings)
    unread = tuple((images[i], _why_unread(images[i], parsers)) for i in unreadable)
    if unread:
        keep = [i for i in range(len(images)) if i not in set(unreadable)]
        images = [images[i] for i in keep]
        readings = {name: [found[i] for i in keep] for name, found in readings.items()}
    complete = [p for p in parsers if None not in readings[p.name]]
    if len(complete) > 1:
        complete = [p for p in complete if _has_metadata(p.name, paths)] or complete
    if len(complete) > 1:
        names = ", ".join(p.name for p in complete)
        raise FileNameError(f"the plate's names fit several conventions ({names}); choose one")
    if not complete:
        raise _explain(images, parsers, readings)
    chosen = [r for r in readings[complete[0].name] if r is not None]
    return PlateFiles(
        complete[0].name,
        tuple(r for r in chosen if not r.thumbnail),
        tuple(r for r in chosen if r.thumbnail),
        unread,
    )


def _why_unread(path: str, parsers: Sequence[FilenameParser]) -> str:
    for parser in parsers:  # a parser's own, more specific complaint first
        try:
            parser.parse(path)
        except UnrecognizedNameError as err:
            return str(err)
    return str(UnrecognizedNameError(path, parsers))


def _read_all(parser: FilenameParser, paths: Sequence[str]) -> list[ParsedName | None]:
    readings: list[ParsedName | None] = []
    for path in paths:
        try:
            readings.append(parser.parse(path))
        except UnrecognizedNameError:  # e.g. a folder that contradicts the name
            readings.append(None)
    return readings


def _has_metadata(format_name: str, paths: Sequence[str]) -> bool:
    hint = METADATA_HINTS.get(format_name)
    return hint is not None and any(hint.search(split_path(p)[1]) for p in paths)


def _explain(
    images: Sequence[str],
    parsers: Sequence[FilenameParser],
    readings: Mapping[str, list[ParsedName | None]],
) -> FileNameError:
    """The most useful error: an unreadable name, or two names in different conventions."""
    for index, path in enumerate(images):
        if all(readings[p.name][index] is None for p in parsers):
            for parser in parsers:  # re-raise a parser's own, more specific complaint
                try:
                    parser.parse(path)
                except UnrecognizedNameError as err:
                    return err
            return UnrecognizedNameError(path, parsers)
    best = max(parsers, key=lambda p: sum(r is not None for r in readings[p.name]))
    odd = next(i for i, r in enumerate(readings[best.name]) if r is None)
    first = next(i for i, r in enumerate(readings[best.name]) if r is not None)
    other = next(p.name for p in parsers if readings[p.name][odd] is not None)
    return FileNameError(
        f"the plate mixes conventions: {images[first]!r} reads as {best.name} but "
        f"{images[odd]!r} only as {other}"
    )


def channel_names_from_htd(text: str) -> dict[int, str]:
    """``WaveName<n>`` entries of an ImageXpress ``.HTD`` file: channel number -> name.

    An HTD is lines of comma-separated, quoted values: ``"WaveName1", "DAPI"``.
    """
    names: dict[int, str] = {}
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if len(row) >= 2:
            found = re.fullmatch(r"WaveName(\d+)", row[0].strip(), re.IGNORECASE)
            if found and row[1].strip():
                names[int(found[1])] = row[1].strip()
    return unique_names(names)


def channel_names_from_index_xml(text: str) -> dict[int, str]:
    """Channel names of an Opera Phenix / Operetta ``Index.xml`` or ``Index.idx.xml``.

    Harmony lists them as ``<Entry ChannelID="1"><ChannelName>DAPI</ChannelName>`` in a
    ``Map`` (newer versions), or as ``ChannelID``/``ChannelName`` children of each ``Image``
    (older ones). The namespace changes with the Harmony version and is ignored.
    """
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        raise PlateMetadataError(f"Index.xml is not well-formed XML: {err}") from None
    names: dict[int, str] = {}
    for element in root.iter():
        channel = element.get("ChannelID") or _child_text(element, "ChannelID")
        name = _child_text(element, "ChannelName")
        if channel and channel.strip().isdigit() and name:
            names.setdefault(int(channel), name)
    return unique_names(names)


def _child_text(element: ElementTree.Element, local_name: str) -> str | None:
    for child in element:
        if child.tag.rsplit("}", 1)[-1] == local_name:
            return (child.text or "").strip() or None
    return None


def unique_names(names: Mapping[int, str]) -> dict[int, str]:
    """Two channels with one name would merge into one layer: number the duplicates."""
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {n: name if counts[name] == 1 else f"{name}-{n}" for n, name in sorted(names.items())}
