"""The plate overview: a step's whole plate at a glance, filled in as wells arrive.

Per streamed step, one small canvas per channel holds every well as a tile at its plate
position (rows x columns of the plate's format), and each tile holds the well's sites in
a grid. A plane is shrunk to its site's cell once, when it arrives, and written into the
canvas; nothing else of it is kept. Each well's slot has a state: not yet arrived,
arrived, or failed in the pipeline (``state``).

Qt-free and napari-free: the viewer process shows the canvases as napari layers
(``process._overview``) and asks ``locate`` where a click or the cursor is.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from platestream.layering import ImageItem, LayerKind
from platestream.store import WellPosition, row_name, well_position

Array = np.ndarray[Any, Any]

# Plate formats, smallest first: (rows, columns).
PLATE_FORMATS = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48))
# A well slot's state (``SLOT_COLORS`` gives them their colours).
EMPTY, NOT_YET, ARRIVED, FAILED = 0, 1, 2, 3
CONTRAST_WELLS = 8  # a channel's contrast spans its first wells, then it is the user's
CONTRAST_PERCENTILES = (1.0, 99.5)
_GRID = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


def _of_step(stream: str, step: str) -> bool:
    """Whether a stream's images (``blur``, or ``blur_<function>`` for a step of several
    functions) belong to ``step`` (empty: to every step)."""
    return not step or stream == step or stream.startswith(f"{step}_")


@functools.lru_cache(maxsize=8192)
def _position(well: Any) -> WellPosition | None:
    """``well_position``, remembered: a plate names its wells again and again."""
    return well_position(well)


def plate_format(rows: int, columns: int) -> tuple[int, int]:
    """The smallest standard plate holding ``rows`` x ``columns`` (else exactly those)."""
    for shape in PLATE_FORMATS:
        if shape[0] >= rows and shape[1] >= columns:
            return shape
    return (rows, columns)


def site_grid(count: int, layout: str = "auto") -> tuple[int, int]:
    """Rows x columns of a well's sites: ``auto`` is a near-square grid (9 -> 3 x 3,
    4 -> 2 x 2, 6 -> 2 x 3); ``"RxC"`` is that grid, given more rows if it is too small."""
    count = max(1, count)
    match = _GRID.match(layout)
    if match:
        rows, columns = max(1, int(match.group(1))), max(1, int(match.group(2)))
        return (max(rows, math.ceil(count / columns)), columns)
    columns = math.ceil(math.sqrt(count))
    return (math.ceil(count / columns), columns)


def check_site_layout(layout: str) -> str:
    """``auto`` or ``RxC`` (e.g. ``3x3``); anything else is an error naming what is expected."""
    if layout.strip() == "auto" or _GRID.match(layout):
        return layout.strip()
    raise ValueError(f"{layout!r}: expected 'auto' or rows x columns such as '3x3'")


def shrink(plane: Array, height: int, width: int) -> Array:
    """``plane`` (Y, X; a stack: its middle plane) as ``height`` x ``width`` float32: one
    sample per output pixel, evenly spread, from a strided view of the plane (no copy of
    it; the cost does not depend on its size: a 2160 x 2160 plane costs what a 256 one
    does, and a tile keeps its plane's mean intensity)."""
    while plane.ndim > 2:
        plane = plane[plane.shape[0] // 2]
    rows, columns = plane.shape
    if rows == 0 or columns == 0:
        return np.zeros((height, width), np.float32)
    step_y, step_x = rows // height, columns // width
    if step_y and step_x:  # the middle of each block of step_y x step_x pixels
        view = plane[step_y // 2 : height * step_y : step_y, step_x // 2 : width * step_x : step_x]
    else:  # a plane smaller than its cell: nearest pixels
        ys = (np.arange(height) * rows) // height
        xs = (np.arange(width) * columns) // width
        view = plane[np.ix_(ys, xs)]
    small: Array = view.astype(np.float32)
    return small


@dataclass(frozen=True)
class Geometry:
    """Where each well and site is on the canvas, in canvas pixels."""

    rows: int
    columns: int
    grid: tuple[int, int]  # sites: rows x columns
    tile: int  # a well's side
    gap: int  # between wells (and around the plate)
    cell: int  # a site's side
    cell_gap: int  # between sites

    @property
    def pitch(self) -> int:
        return self.tile + self.gap

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows * self.pitch + self.gap, self.columns * self.pitch + self.gap)

    def well_origin(self, position: WellPosition) -> tuple[int, int]:
        return (
            self.gap + position.row_index * self.pitch,
            self.gap + position.column_index * self.pitch,
        )

    def cell_origin(self, position: WellPosition, site_index: int) -> tuple[int, int]:
        y, x = self.well_origin(position)
        grid_row, grid_column = divmod(site_index, self.grid[1])
        used_y = self.grid[0] * self.cell + (self.grid[0] - 1) * self.cell_gap
        used_x = self.grid[1] * self.cell + (self.grid[1] - 1) * self.cell_gap
        y += (self.tile - used_y) // 2 + grid_row * (self.cell + self.cell_gap)
        x += (self.tile - used_x) // 2 + grid_column * (self.cell + self.cell_gap)
        return (y, x)


def geometry(rows: int, columns: int, sites: int, tile: int, layout: str) -> Geometry:
    grid = site_grid(sites, layout)
    gap = max(2, tile // 16)
    cell_gap = 1 if tile >= 48 and max(grid) > 1 else 0
    side = max(grid)
    cell = max(1, (tile - (side - 1) * cell_gap) // side)
    return Geometry(rows, columns, grid, tile, gap, cell, cell_gap)


@dataclass
class PlateOverview:
    """One step's plate map: a canvas per channel, and the state of each well's slot."""

    title: str  # the step, e.g. "01_blur"
    tile: int = 96
    site_layout: str = "auto"
    max_side: int = 4096  # the largest canvas side (the GPU's texture size)
    wells: dict[WellPosition, str] = field(default_factory=dict)  # position -> name given
    sites: list[Any] = field(default_factory=list)  # site index -> value
    channels: dict[Hashable, Array] = field(default_factory=dict)  # channel -> canvas
    contrast: dict[Hashable, tuple[float, float]] = field(default_factory=dict)
    failed: set[WellPosition] = field(default_factory=set)
    #: what changed since ``take_changes``: wells to draw again, and the geometry
    dirty: set[WellPosition] = field(default_factory=set)
    reshaped: bool = False
    user_contrast: set[Hashable] = field(default_factory=set)  # set by the user: kept
    _contrast_wells: dict[Hashable, set[WellPosition]] = field(default_factory=dict)
    _geometry: Geometry | None = None
    _cells: set[tuple[Hashable, WellPosition, int]] = field(default_factory=set)
    _arrived: set[WellPosition] = field(default_factory=set)
    _fitted: tuple[int, int] = (-1, -1)  # wells and sites the geometry was made for
    _site_index: dict[Any, int] = field(default_factory=dict)

    @property
    def geometry(self) -> Geometry | None:
        return self._geometry

    @property
    def well_count(self) -> int:
        return len(self.wells)

    @property
    def nbytes(self) -> int:
        return sum(canvas.nbytes for canvas in self.channels.values())

    def declare(self, wells: Iterable[Any], sites: Iterable[Any]) -> None:
        """The producer's declared plate: its wells and sites have their places at once."""
        for name in wells:
            position = _position(name)
            if position is not None:
                self.wells.setdefault(position, str(name))
        for site in sites:
            if site not in self._site_index:
                self.sites.append(site)
                self._site_index[site] = len(self.sites) - 1
        self._fit()

    def add(self, item: ImageItem, plane: Array) -> bool:
        """Shrink ``plane`` into its site's cell; False if it has no place on a plate (no
        well name, or labels, points and shapes)."""
        if item.kind is not LayerKind.IMAGE:
            return False
        lookup = item.lookup
        position = _position(lookup.get("well", ""))
        if position is None:
            return False
        if position not in self.wells:
            self.wells[position] = str(lookup["well"])
        site = lookup.get("site")
        site_index = self._site_index.get(site)
        if site_index is None:
            self.sites.append(site)
            site_index = self._site_index[site] = len(self.sites) - 1
        channel = lookup.get("channel")
        self._fit()
        layout = self._geometry
        assert layout is not None
        canvas = self.channels.get(channel)
        if canvas is None:
            dtype = plane.dtype if plane.dtype.kind in "uif" and plane.itemsize <= 4 else np.float32
            canvas = self.channels[channel] = np.zeros(layout.shape, dtype)
            self.reshaped = True
        y, x = layout.cell_origin(position, site_index)
        small = shrink(plane, layout.cell, layout.cell)  # the plane's own values
        if plane.dtype != canvas.dtype and canvas.dtype.kind in "ui":  # e.g. uint16 into uint8
            limits = np.iinfo(canvas.dtype)
            small = np.clip(np.nan_to_num(small), limits.min, limits.max)
        canvas[y : y + layout.cell, x : x + layout.cell] = small
        self._cells.add((channel, position, site_index))
        self._widen_contrast(channel, position, small)
        self.dirty.add(position)
        if position not in self._arrived:
            self._arrived.add(position)
            self._mark(position)
        return True

    def _widen_contrast(self, channel: Hashable, position: WellPosition, small: Array) -> None:
        """A channel's contrast spans its first ``CONTRAST_WELLS`` wells (each tile's 1st to
        99.5th percentile); then it is the user's (the napari side sets it only while the
        user has not changed it)."""
        wells = self._contrast_wells.setdefault(channel, set())
        if channel in self.user_contrast or (
            len(wells) >= CONTRAST_WELLS and position not in wells
        ):
            return
        wells.add(position)
        # the tile's 1st and 99.5th percentiles: a few hot pixels do not dim the plate
        low, high = (float(v) for v in np.percentile(small, CONTRAST_PERCENTILES))
        if channel in self.contrast:
            low, high = min(low, self.contrast[channel][0]), max(high, self.contrast[channel][1])
        limits = (low, high if high > low else low + 1.0)
        if limits != self.contrast.get(channel):
            self.contrast[channel] = limits
            self.dirty |= self._arrived  # every tile shows the new contrast

    def set_contrast(self, channel: Hashable, limits: tuple[float, float]) -> None:
        """The user's contrast for a channel: kept from now on, every tile redrawn."""
        self.user_contrast.add(channel)
        self.contrast[channel] = (float(limits[0]), float(max(limits[1], limits[0] + 1e-6)))
        self.dirty |= self._arrived

    def mark_failed(self, well: Any) -> bool:
        position = _position(well)
        if position is None:
            return False
        self.wells.setdefault(position, str(well))
        self.failed.add(position)
        self._fit()
        self._mark(position)
        return True

    def locate(self, y: float, x: float) -> tuple[str, Any] | None:
        """The well (its name) and site (None between sites) at canvas pixel ``y, x``."""
        layout = self._geometry
        if layout is None:
            return None
        row, in_y = divmod(math.floor(y) - layout.gap, layout.pitch)
        column, in_x = divmod(math.floor(x) - layout.gap, layout.pitch)
        if not (0 <= row < layout.rows and 0 <= column < layout.columns):
            return None
        if in_y >= layout.tile or in_x >= layout.tile:
            return None  # the gap between wells
        position = WellPosition(row, column)
        name = self.wells.get(position, position.name)
        top, left = layout.cell_origin(position, 0)
        step = layout.cell + layout.cell_gap
        grid_row, cy = divmod(math.floor(y) - top, step)
        grid_column, cx = divmod(math.floor(x) - left, step)
        site = None
        if 0 <= grid_row < layout.grid[0] and 0 <= grid_column < layout.grid[1]:
            index = grid_row * layout.grid[1] + grid_column
            if index < len(self.sites) and cy < layout.cell and cx < layout.cell:
                site = self.sites[index]
        return (name, site)

    def labels(self) -> tuple[list[tuple[float, float, str]], list[tuple[float, float, str]]]:
        """Row letters (left of the plate) and column numbers (above it): (y, x, text)."""
        layout = self._geometry
        if layout is None:
            return ([], [])
        half = layout.tile / 2
        rows = [
            (layout.gap + r * layout.pitch + half, -layout.pitch * 0.4, row_name(r))
            for r in range(layout.rows)
        ]
        columns = [
            (-layout.pitch * 0.4, layout.gap + c * layout.pitch + half, str(c + 1))
            for c in range(layout.columns)
        ]
        return (rows, columns)

    def take_changes(self) -> tuple[set[WellPosition], bool]:
        """(wells to draw again, geometry changed) since the last call."""
        changes = (self.dirty, self.reshaped)
        self.dirty, self.reshaped = set(), False
        return changes

    def state(self, position: WellPosition) -> int:
        if position in self.failed:
            return FAILED
        return ARRIVED if position in self._arrived else NOT_YET

    def values_at(self, y: float, x: float) -> dict[Hashable, float]:
        """Each channel's value at canvas pixel ``y, x`` (for the status bar)."""
        row, column = math.floor(y), math.floor(x)
        found = {}
        for channel, canvas in self.channels.items():
            if 0 <= row < canvas.shape[0] and 0 <= column < canvas.shape[1]:
                found[channel] = float(canvas[row, column])
        return found

    # ------------------------------------------------------------------ geometry

    def _fit(self) -> None:
        """Grow the plate or the site grid when new wells or sites need it."""
        counts = (len(self.wells), len(self.sites))
        if counts == self._fitted:
            return
        self._fitted = counts
        rows = max((p.row_index + 1 for p in self.wells), default=1)
        columns = max((p.column_index + 1 for p in self.wells), default=1)
        shape = plate_format(rows, columns)
        current = self._geometry
        sites = max(1, len(self.sites))
        if (
            current is not None
            and current.rows >= shape[0]
            and current.columns >= shape[1]
            and current.grid[0] * current.grid[1] >= sites
        ):
            return
        rows, columns = (
            max(shape[0], current.rows if current else 0),
            max(shape[1], current.columns if current else 0),
        )
        tile = self.tile
        layout = geometry(rows, columns, sites, tile, self.site_layout)
        while tile > 8 and max(layout.shape) > self.max_side:  # smaller tiles, not a warning
            tile -= 4
            layout = geometry(rows, columns, sites, tile, self.site_layout)
        self._regrid(current, layout)

    def _regrid(self, old: Geometry | None, new: Geometry) -> None:
        """Move what is drawn to the new geometry (cells resized by nearest pixels)."""
        for channel, canvas in list(self.channels.items()):
            moved = np.zeros(new.shape, canvas.dtype)
            if old is not None:
                for cell_channel, position, site_index in self._cells:
                    if cell_channel != channel:
                        continue
                    y, x = old.cell_origin(position, site_index)
                    block = canvas[y : y + old.cell, x : x + old.cell]
                    ny, nx = new.cell_origin(position, site_index)
                    pick = np.arange(new.cell) * old.cell // new.cell
                    moved[ny : ny + new.cell, nx : nx + new.cell] = block[np.ix_(pick, pick)]
            self.channels[channel] = moved
        self._geometry = new
        self.dirty = set(self.all_positions(new))
        self.reshaped = True

    def all_positions(self, layout: Geometry) -> Iterable[WellPosition]:
        for row in range(layout.rows):
            for column in range(layout.columns):
                yield WellPosition(row, column)

    def _mark(self, position: WellPosition) -> None:
        self.dirty.add(position)  # its slot changed state: drawn again


class Overviews:
    """A viewer's plate overviews, one per streamed step, fed with every image plane the
    layers take (``add``) and the plate layouts producers declare (``declare``).

    ``max_side``: the GPU's largest texture; a plate whose canvas would exceed it gets
    smaller tiles (a 1536-well plate at 96 px would be 4,900 px wide)."""

    def __init__(self, tile: int = 96, site_layout: str = "auto", max_side: int = 4096) -> None:
        self.tile = tile
        self.site_layout = check_site_layout(site_layout)
        self.max_side = max_side
        self.plates: dict[tuple[int, str], PlateOverview] = {}
        self.colormaps: dict[tuple[tuple[int, str], Hashable], str | None] = {}
        self.plane_shapes: dict[tuple[int, str], tuple[int, ...]] = {}
        self._wells: dict[Any, None] = {}
        self._sites: dict[Any, None] = {}
        self._failed: dict[str, set[Any]] = {}  # step name ("": every step) -> wells

    @property
    def nbytes(self) -> int:
        return sum(plate.nbytes for plate in self.plates.values())

    def declare(self, layout: Mapping[str, Sequence[Any]]) -> None:
        self._wells.update(dict.fromkeys(layout.get("well", ())))
        self._sites.update(dict.fromkeys(layout.get("site", ())))
        for plate in self.plates.values():
            plate.declare(self._wells, self._sites)

    def add(self, item: ImageItem, plane: Array, colormap: str | None = None) -> bool:
        if item.kind is not LayerKind.IMAGE or _position(item.lookup.get("well", "")) is None:
            return False
        key = (item.step_index, item.step_name)
        plate = self.plates.get(key)
        if plate is None:
            title = f"{item.step_index:02d}_{item.step_name}"
            plate = PlateOverview(title, self.tile, self.site_layout, self.max_side)
            self.plates[key] = plate
            plate.declare(self._wells, self._sites)
            for step, wells in self._failed.items():  # reported before its first image
                if _of_step(item.step_name, step):
                    for well in wells:
                        plate.mark_failed(well)
            self.plane_shapes[key] = tuple(plane.shape[-2:])
        channel = item.lookup.get("channel")
        self.colormaps.setdefault((key, channel), colormap)
        return plate.add(item, plane)

    def mark_failed(self, step_name: str, wells: Iterable[Any]) -> int:
        """Wells whose step ``step_name`` failed (empty name: every step): marked in that
        step's overview, now or when it is made; returns how many overviews changed."""
        wells = tuple(wells)
        self._failed.setdefault(step_name, set()).update(wells)
        changed = 0
        for (_, name), plate in self.plates.items():
            if _of_step(name, step_name):
                changed += sum(plate.mark_failed(well) for well in wells) > 0
        return changed

    def clear(self) -> None:
        self.plates.clear()
        self.colormaps.clear()
        self.plane_shapes.clear()


# The slot colours of the composed overview (RGB), by state.
SLOT_COLORS = {EMPTY: (0, 0, 0), NOT_YET: (52, 52, 58), ARRIVED: (8, 8, 8), FAILED: (150, 18, 18)}


def compose(
    plate: PlateOverview,
    luts: Mapping[Hashable, Array],
    out: Array,
    positions: Iterable[WellPosition],
) -> None:
    """Draw the wells at ``positions`` into ``out`` (RGB uint8 of the plate's canvas shape):
    the slot's colour, plus each channel through its lookup table (256 x 3 uint8, over the
    channel's contrast), added and clipped - channels compose as napari's additive
    blending does."""
    layout = plate.geometry
    if layout is None:
        return
    tile = layout.tile
    for position in positions:
        y, x = layout.well_origin(position)
        if y + tile > out.shape[0] or x + tile > out.shape[1]:
            continue
        state = plate.state(position)
        total = np.empty((tile, tile, 3), np.uint16)
        total[:] = SLOT_COLORS[state]
        if state != NOT_YET:
            for channel, canvas in plate.channels.items():
                lut = luts.get(channel)
                if lut is None:
                    continue
                low, high = plate.contrast.get(channel, (0.0, 1.0))
                values = canvas[y : y + tile, x : x + tile].astype(np.float32)
                index = np.clip((values - low) * (255.0 / max(high - low, 1e-6)), 0, 255)
                total += lut[index.astype(np.uint8)]
        out[y : y + tile, x : x + tile] = np.minimum(total, 255)
