"""Where an image goes in a run: ImageItem components -> a place in an NGFF plate.

A run holds one NGFF plate per step (and per value of any component that has no NGFF
axis, such as a function index: those values name the plate and are kept in its
metadata). Inside a plate: row -> column -> field (the site) -> a multiscale image with
axes t, c, z, y, x. The channel, z and timepoint values get their index in order of
arrival; the values themselves are kept in the plate's metadata, so a reopened run knows
them again. Labels go into ``labels/<name>`` of their field's image (the name: the channel,
else ``labels``), as NGFF labels.

Pure bookkeeping, no I/O: the ``RunStore`` persists what it decides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from platestream.config import NapariDisplayConfig
from platestream.layering import ImageItem, LayerKind

from ._wells import WellPosition, well_position

# Components with an NGFF place; every other one names the plate.
WELL, SITE, CHANNEL, Z, TIMEPOINT = "well", "site", "channel", "z_index", "timepoint"
PLACED = frozenset({WELL, SITE, CHANNEL, Z, TIMEPOINT})
LABELS_NAME = "labels"  # a labels image without a channel


@dataclass(frozen=True, slots=True)
class PlaneLocation:
    """One plane (or one payload of ``(Z, Y, X)``) of a run."""

    plate: str
    well: WellPosition
    field: int
    label: str | None  # None: the image; else the name under ``labels/``
    t: int
    c: int
    z: int

    @property
    def image_path(self) -> str:
        base = f"{self.plate}/{self.well.path}/{self.field}"
        return base if self.label is None else f"{base}/labels/{self.label}"


def _text(value: Any) -> str:
    return str(value)


@dataclass
class PlateLayout:
    """What a plate of the run holds so far; JSON-able through ``to_json``/``from_json``."""

    name: str
    step_index: int
    step_name: str
    extras: dict[str, Any]  # component values with no NGFF axis
    channels: list[Any] = field(default_factory=list)  # c index -> channel value
    zs: list[Any] = field(default_factory=list)
    ts: list[Any] = field(default_factory=list)
    sites: list[Any] = field(default_factory=list)  # field index -> site value
    labels: list[str] = field(default_factory=list)
    wells: dict[str, str] = field(default_factory=dict)  # "A/1" -> the well name items gave
    display: dict[str, Any] = field(default_factory=dict)  # the display config (wire form)
    dtypes: dict[str, str] = field(default_factory=dict)  # "image" or a label -> dtype
    windows: dict[str, list[float]] = field(default_factory=dict)  # c -> first plane's range
    shapes: dict[str, list[int]] = field(default_factory=dict)  # "image"/label -> first shape
    odd_shapes: dict[str, list[int]] = field(default_factory=dict)  # "A/1/0" -> its own shape

    def sizes(self) -> tuple[int, ...]:
        """How many values of each kind: when these change, the metadata is rewritten."""
        return (
            len(self.wells),
            len(self.channels),
            len(self.zs),
            len(self.ts),
            len(self.sites),
            len(self.labels),
            len(self.dtypes),
            len(self.odd_shapes),
        )

    def index(self, values: list[Any], value: Any) -> int:
        try:
            return values.index(value)
        except ValueError:
            values.append(value)
            return len(values) - 1

    def to_json(self) -> dict[str, Any]:
        """A copy (the locator goes on adding values while the copy is written)."""
        return {
            "step_index": self.step_index,
            "step_name": self.step_name,
            "components": dict(self.extras),
            "channels": list(self.channels),
            "z_index": list(self.zs),
            "timepoint": list(self.ts),
            "site": list(self.sites),
            "labels": list(self.labels),
            "wells": dict(self.wells),
            "display": dict(self.display),
            "dtypes": dict(self.dtypes),
            "windows": {k: list(v) for k, v in self.windows.items()},
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "odd_shapes": {k: list(v) for k, v in self.odd_shapes.items()},
        }

    @classmethod
    def from_json(cls, name: str, values: dict[str, Any]) -> PlateLayout:
        return cls(
            name=name,
            step_index=int(values["step_index"]),
            step_name=str(values["step_name"]),
            extras=dict(values.get("components", {})),
            channels=list(values.get("channels", [])),
            zs=list(values.get("z_index", [])),
            ts=list(values.get("timepoint", [])),
            sites=list(values.get("site", [])),
            labels=[str(v) for v in values.get("labels", [])],
            wells={str(k): str(v) for k, v in values.get("wells", {}).items()},
            display=dict(values.get("display", {})),
            dtypes={str(k): str(v) for k, v in values.get("dtypes", {}).items()},
            windows={str(k): [float(x) for x in v] for k, v in values.get("windows", {}).items()},
            shapes={str(k): [int(x) for x in v] for k, v in values.get("shapes", {}).items()},
            odd_shapes={
                str(k): [int(x) for x in v] for k, v in values.get("odd_shapes", {}).items()
            },
        )


def plate_name(item: ImageItem) -> str:
    """``s00_blur`` for step 0 "blur"; other unplaced components follow (``_function-2``)."""
    parts = [f"s{item.step_index:02d}_{item.step_name}"]
    for key in sorted(item.lookup):
        if key not in PLACED:
            parts.append(f"{key}-{item.lookup[key]}")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)).strip("-.")
    return name or "plate"


def shown_as(display: dict[str, Any]) -> str:
    """What makes two display configs show a step's images differently: their display
    fields (colormaps, modes, size handling...), as comparable text."""
    fields = {name: display.get(name) for name in NapariDisplayConfig.field_names()}
    return json.dumps(fields, sort_keys=True, default=str)


class Locator:
    """Gives each item its ``PlaneLocation``, or the reason it has none."""

    def __init__(self, plates: dict[str, PlateLayout] | None = None) -> None:
        self.plates: dict[str, PlateLayout] = plates if plates is not None else {}
        # id(display) -> (display, shown_as): the viewer passes the same dict per config
        self._shown: dict[int, tuple[dict[str, Any], str]] = {}
        self.changed: set[str] = set()  # plates with new values since their metadata
        # Plates with new index values (channels, sites, z, t, labels, dtypes): written
        # before the next plane of theirs, so no chunk's index is unexplained on disk.
        self.urgent: set[str] = set()

    def locate(
        self, item: ImageItem, display: dict[str, Any] | None = None
    ) -> tuple[PlaneLocation | None, str]:
        """(location, "") or (None, why): no well a plate has a place for, or a payload
        with more than three axes (NGFF images end in z, y, x)."""
        lookup = item.lookup
        if item.kind not in (LayerKind.IMAGE, LayerKind.LABELS):
            return None, f"{item.kind.value} are not stored in OME-Zarr"
        well = well_position(lookup.get(WELL, "")) if WELL in lookup else None
        if well is None:
            return None, f"well {lookup.get(WELL)!r} is not a plate position (like A01)"
        if len(item.shape) not in (2, 3) or (len(item.shape) == 3 and Z in lookup):
            return None, f"a payload of shape {item.shape} has no place on NGFF axes"
        name = self._plate_for(plate_name(item), display or {})
        plate = self.plates.get(name)
        if plate is None:
            extras = {k: v for k, v in lookup.items() if k not in PLACED}
            plate = PlateLayout(name, item.step_index, item.step_name, extras)
            plate.display = dict(display or {})
            self.plates[name] = plate
        sizes = plate.sizes()
        plate.wells.setdefault(well.path, _text(lookup[WELL]))
        label = None
        if item.kind is LayerKind.LABELS:
            label = re.sub(r"[^A-Za-z0-9._-]+", "-", _text(lookup.get(CHANNEL, LABELS_NAME)))
            if label not in plate.labels:
                plate.labels.append(label)
            c = 0
        else:
            c = plate.index(plate.channels, lookup.get(CHANNEL))
        plate.dtypes.setdefault(label or "image", item.dtype)
        location = PlaneLocation(
            plate=name,
            well=well,
            field=plate.index(plate.sites, lookup.get(SITE)),
            label=label,
            t=plate.index(plate.ts, lookup.get(TIMEPOINT)),
            c=c,
            z=plate.index(plate.zs, lookup.get(Z)) if len(item.shape) == 2 else 0,
        )
        first = plate.shapes.setdefault(label or "image", list(item.shape))
        if list(item.shape) != first:  # reopening needs no array opened to know it
            plate.odd_shapes[location.image_path.split("/", 1)[1]] = list(item.shape)
        now = plate.sizes()
        if now != sizes:
            self.changed.add(name)
            if now[1:-1] != sizes[1:-1]:  # index values, not only a well or a shape
                self.urgent.add(name)
        return location, ""

    def _plate_for(self, name: str, display: dict[str, Any]) -> str:
        """The step's plate, or - for images shown with another display config than the
        plate's - a plate of their own (``s01_blur_display-2``...), so a reopened run shows
        each as it was shown."""
        plate = self.plates.get(name)
        if plate is None or not display or not plate.display:
            return name
        wanted = self._shown_as(display)
        candidate, number = name, 1
        while plate is not None and self._shown_as(plate.display) != wanted:
            number += 1
            candidate = f"{name}_display-{number}"
            plate = self.plates.get(candidate)
        return candidate

    def _shown_as(self, display: dict[str, Any]) -> str:
        known = self._shown.get(id(display))
        if known is None or known[0] is not display:
            if len(self._shown) > 256:
                self._shown.clear()
            known = self._shown[id(display)] = (display, shown_as(display))
        return known[1]

    def values_of(self, plate_name: str, locations: list[PlaneLocation]) -> dict[str, list[Any]]:
        """Each component's values over the items of ``locations`` (one plate), in order of
        first appearance - what ``layering.layout_of`` gives for those items - without
        making the items."""
        plate = self.plates[plate_name]
        values: dict[str, list[Any]] = {key: [value] for key, value in plate.extras.items()}

        def named(indices: Any, names: list[Any]) -> list[Any]:
            found = (names[i] for i in dict.fromkeys(indices) if i < len(names))
            return list(dict.fromkeys(value for value in found if value is not None))

        wells = dict.fromkeys(location.well for location in locations)
        values[WELL] = list(dict.fromkeys(plate.wells.get(w.path, w.name) for w in wells))
        for key, names, index in (
            (SITE, plate.sites, lambda loc: loc.field),
            (TIMEPOINT, plate.ts, lambda loc: loc.t),
            (Z, plate.zs, lambda loc: loc.z),
        ):
            found = named(map(index, locations), names)
            if found:
                values[key] = found
        channels: dict[Any, None] = {}
        for label, c in dict.fromkeys((loc.label, loc.c) for loc in locations):
            if label is None:
                channel = plate.channels[c] if c < len(plate.channels) else None
            else:
                channel = None if label == LABELS_NAME else label
            if channel is not None:
                channels[channel] = None
        if channels:
            values[CHANNEL] = list(channels)
        return {key: found for key, found in values.items() if found}

    def item_of(self, location: PlaneLocation) -> ImageItem:
        """The item a stored plane came from (for reopening a run)."""
        plate = self.plates[location.plate]
        kind_key = location.label or "image"
        recorded = plate.odd_shapes.get(location.image_path.split("/", 1)[1])
        shape: tuple[int, ...] = tuple(recorded or plate.shapes.get(kind_key) or ())
        dtype = plate.dtypes.get(kind_key, "uint16")
        components: dict[str, Any] = dict(plate.extras)
        components[WELL] = plate.wells.get(location.well.path, location.well.name)
        for key, values, index in (
            (SITE, plate.sites, location.field),
            (TIMEPOINT, plate.ts, location.t),
            (Z, plate.zs, location.z),
        ):
            if index < len(values) and values[index] is not None:
                components[key] = values[index]
        if location.label is None:
            channel = plate.channels[location.c] if location.c < len(plate.channels) else None
            kind = LayerKind.IMAGE
        else:
            channel = None if location.label == LABELS_NAME else location.label
            kind = LayerKind.LABELS
        if channel is not None:
            components[CHANNEL] = channel
        if len(shape) == 3 and Z in components:
            shape = shape[1:]
        return ImageItem(
            components=components,
            step_index=plate.step_index,
            step_name=plate.step_name,
            shape=shape,
            dtype=dtype,
            kind=kind,
        )
