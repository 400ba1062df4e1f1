"""Microscope file names -> component metadata (well, site, channel, z_index, timepoint).

Pure functions of strings: a parser reads a path relative to the plate folder (``/`` or
``\\`` separated) and returns a :class:`ParsedName`, or None when the name is not in its
convention. Nothing is guessed: a name no parser reads raises :class:`UnrecognizedNameError`
naming the file and the conventions tried. Wells are normalised to ``A01``; numbers are ints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from platestream.config import DEFAULT_REGISTRY, ConfigError, FrozenMap, normalize_well

from ._items import ComponentValue

IMAGE_SUFFIX = re.compile(r"\.tiff?$", re.IGNORECASE)
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"


class FileNameError(ValueError):
    """A problem with the file names of a plate."""


class UnrecognizedNameError(FileNameError):
    """A file name that none of the tried conventions reads."""

    def __init__(self, path: str, tried: Sequence[FilenameParser], detail: str = "") -> None:
        self.path, self.tried = path, tuple(p.name for p in tried)
        conventions = "; ".join(f"{p.name} ({p.convention})" for p in tried)
        super().__init__(f"cannot read {path!r}{detail}; tried: {conventions}")


@dataclass(frozen=True)
class ParsedName:
    """What a file name says: component values, and whether the file is a thumbnail."""

    path: str
    format: str
    components: Mapping[str, ComponentValue]
    thumbnail: bool = False
    extra: Mapping[str, str] = field(default_factory=FrozenMap)  # e.g. the GUID, the prefix

    def with_channel_names(self, names: Mapping[int, str]) -> ParsedName:
        """The same name with its channel number replaced by the plate's channel name."""
        channel = self.components.get("channel")
        if not isinstance(channel, int) or channel not in names:
            return self
        components = {**self.components, "channel": names[channel]}
        return ParsedName(self.path, self.format, FrozenMap(components), self.thumbnail, self.extra)


class FilenameParser(Protocol):
    """Reads one naming convention."""

    @property
    def name(self) -> str: ...

    @property
    def convention(self) -> str:
        """The convention in one line, shown in errors."""
        ...

    def parse(self, path: str) -> ParsedName | None: ...


def split_path(path: str) -> tuple[tuple[str, ...], str]:
    """(folders, file name) of a relative path, whichever separator it uses."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts:
        raise UnrecognizedNameError(path, (), " (an empty path)")
    return tuple(parts[:-1]), parts[-1]


def is_image(path: str) -> bool:
    """TIFF files (any case of .tif/.tiff) are images; everything else is metadata or noise."""
    return IMAGE_SUFFIX.search(path) is not None


def _ints(match: re.Match[str], names: Mapping[str, str]) -> dict[str, ComponentValue]:
    """Component values from digit groups: {component: group name}, absent groups skipped."""
    return {c: int(match[g]) for c, g in names.items() if match[g] is not None}


class ImageXpressParser:
    """ImageXpress / MetaXpress exports.

    Convention: ``<prefix>_<well>[_s<site>][_w<channel>][_z<z>][_t<t>][_thumb][<GUID>].tif``

    * the prefix is the plate or acquisition name and may hold spaces and underscores
      (``val screen_B02_s1_w1.tif``); it is optional (``A01_s1_w1.tif``);
    * the well is a row of one or two letters and a two-digit column (``B02``, ``AF48``);
      the shortest prefix wins. A capital-letter well is looked for first, so lower-case
      tokens of the prefix (``exp_ab12_A01_s1``) are not taken for a well; only a name
      with no capital well is read with a lower-case one, as real MetaXpress exports write
      them (``Screen1_c07_s2_w3<GUID>.tif`` is well ``C07``);
    * MetaXpress glues a GUID to the channel number (``_w1C4EC5CAE-...-7A0D8E4E1D3F``) and
      writes a ``_thumb`` twin of every image (``_w1_thumb<GUID>``), flagged ``thumbnail``;
    * folders ``TimePoint_<n>`` and ``ZStep_<n>`` (any case) give the timepoint and z-plane;
      a name that also says them must agree;
    * ``.tif`` or ``.tiff`` in any case. Sites, channels, z and timepoints are ints.
    """

    name = "imagexpress"
    convention = "<prefix>_<well>_s<site>_w<channel>[_z<z>][_t<t>][_thumb][<GUID>].tif"
    _REST = (
        r"(?:_s(?P<site>\d+))?(?:_w(?P<channel>\d+?))?(?:_z(?P<z>\d+))?(?:_t(?P<t>\d+))?"
        rf"(?P<thumb>_thumb)?(?P<guid>{_GUID})?\.tiff?$"
    )
    _NAMES = (  # a capital-letter well first; a lower-case one only failing that
        re.compile(r"^(?:(?P<prefix>.*?)_)??(?P<well>(?-i:[A-Z]{1,2})\d{2,3})" + _REST, re.I),
        re.compile(r"^(?:(?P<prefix>.*?)_)??(?P<well>[A-Z]{1,2}\d{2,3})" + _REST, re.I),
    )
    _FOLDER = re.compile(r"^(?P<kind>TimePoint|ZStep)_(?P<n>\d+)$", re.IGNORECASE)
    _FOLDER_COMPONENT: ClassVar[Mapping[str, str]] = FrozenMap(
        {"timepoint": "timepoint", "zstep": "z_index"}
    )

    def parse(self, path: str) -> ParsedName | None:
        folders, filename = split_path(path)
        match = self._NAMES[0].match(filename) or self._NAMES[1].match(filename)
        if match is None:
            return None
        components = _ints(match, {"site": "site", "channel": "channel", "z_index": "z"})
        components.update(_ints(match, {"timepoint": "t"}))
        for folder in folders:
            found = self._FOLDER.match(folder)
            if found is None:
                continue
            component = self._FOLDER_COMPONENT[found["kind"].lower()]
            value = int(found["n"])
            if components.get(component, value) != value:
                detail = f" ({folder!r} contradicts the name's {component} {components[component]})"
                raise UnrecognizedNameError(path, (self,), detail)
            components[component] = value
        components["well"] = normalize_well(match["well"])
        extra = {k: match[k] for k in ("prefix", "guid") if match[k]}
        return ParsedName(
            path, self.name, FrozenMap(_ordered(components)), bool(match["thumb"]), FrozenMap(extra)
        )


class OperaPhenixParser:
    """Opera Phenix / Operetta (Harmony) exports.

    Convention: ``r<row>c<col>f<field>p<plane>-ch<channel>sk<t>fk<k>fl<l>.tiff``

    * row and column numbers become the well (``r02c03`` -> ``B03``);
    * the field is the site, the plane the z_index, ``sk`` the timepoint (1-based, as
      Harmony writes it); ``fk`` and ``fl`` are kept in ``extra``;
    * ``sk``/``fk``/``fl`` may be missing; ``.tif`` or ``.tiff`` in any case.
    """

    name = "opera_phenix"
    convention = "r<row>c<col>f<field>p<plane>-ch<channel>sk<t>fk<k>fl<l>.tiff"
    _NAME = re.compile(
        r"^r(?P<row>\d{1,2})c(?P<col>\d{1,2})f(?P<field>\d+)p(?P<plane>\d+)-ch(?P<channel>\d+)"
        r"(?:sk(?P<sk>\d+))?(?:fk(?P<fk>\d+))?(?:fl(?P<fl>\d+))?\.tiff?$",
        re.IGNORECASE,
    )

    def parse(self, path: str) -> ParsedName | None:
        _folders, filename = split_path(path)
        match = self._NAME.match(filename)
        if match is None or int(match["row"]) < 1 or int(match["col"]) < 1:
            return None
        components: dict[str, ComponentValue] = {
            "well": normalize_well((int(match["row"]), int(match["col"]))),
            **_ints(match, {"site": "field", "channel": "channel", "z_index": "plane"}),
            **_ints(match, {"timepoint": "sk"}),
        }
        extra = {k: match[k] for k in ("fk", "fl") if match[k] is not None}
        return ParsedName(path, self.name, FrozenMap(_ordered(components)), extra=FrozenMap(extra))


class RegexParser:
    """A convention given as a regular expression with named groups.

    Groups named after components (``well``, ``site``, ``channel``, ``z_index``,
    ``timepoint``) give their values; ``row`` and ``column`` together may give the well
    (numbers or letters). Digit-only values become ints. The expression must match the
    whole file name, or the whole relative path with ``match_path=True``.
    """

    def __init__(self, pattern: str, name: str = "pattern", match_path: bool = False) -> None:
        try:
            self._regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"file name pattern {pattern!r}: {err}") from None
        groups = set(self._regex.groupindex)
        known = set(DEFAULT_REGISTRY.names) - {"step"}
        unknown = groups - known - {"row", "column"}
        if unknown:
            raise ConfigError(
                f"file name pattern {pattern!r}: groups {sorted(unknown)} are not components; "
                f"use {', '.join(sorted(known))} (or row and column for the well)"
            )
        if ("row" in groups) != ("column" in groups) or ("row" in groups and "well" in groups):
            raise ConfigError(f"file name pattern {pattern!r}: give well, or row and column")
        self.name, self.match_path = name, match_path
        self.convention = pattern

    def parse(self, path: str) -> ParsedName | None:
        _folders, filename = split_path(path)
        subject = path.replace("\\", "/") if self.match_path else filename
        match = self._regex.fullmatch(subject)
        if match is None:
            return None
        values = {k: v for k, v in match.groupdict().items() if v is not None}
        components: dict[str, ComponentValue] = {
            k: int(v) if v.isascii() and v.isdigit() else v for k, v in values.items()
        }
        try:
            if "row" in components:
                row, column = components.pop("row"), components.pop("column")
                components["well"] = normalize_well((row, column))
            elif "well" in components:
                components["well"] = normalize_well(components["well"])
        except (ConfigError, ValueError):
            return None
        return ParsedName(path, self.name, FrozenMap(_ordered(components)))


def _ordered(components: Mapping[str, ComponentValue]) -> dict[str, ComponentValue]:
    """Registry order, so equal names give equal (and equally printed) metadata."""
    names = DEFAULT_REGISTRY.names
    return {k: components[k] for k in sorted(components, key=names.index)}


BUILTIN_PARSERS: tuple[FilenameParser, ...] = (ImageXpressParser(), OperaPhenixParser())


def parse_name(path: str, parsers: Sequence[FilenameParser] = BUILTIN_PARSERS) -> ParsedName:
    """The first reading of ``path`` by ``parsers``; UnrecognizedNameError if none reads it."""
    for parser in parsers:
        parsed = parser.parse(path)
        if parsed is not None:
            return parsed
    raise UnrecognizedNameError(path, parsers)
