"""The run store: a viewer's planes on disk as OME-Zarr (NGFF 0.5, Zarr v3, HCS layout).

Arrays are zarr-python's; every piece of NGFF metadata is built and validated by yaozarrs'
models (no hand-written NGFF JSON). A run folder::

    RUN/zarr.json                    platestream: format, title, created, codec
    RUN/s01_blur/zarr.json           ome: plate; platestream: the plate's layout
    RUN/s01_blur/A/1/zarr.json       ome: well (its fields)
    RUN/s01_blur/A/1/0/zarr.json     ome: multiscales (t, c, z, y, x) + omero channels
    RUN/s01_blur/A/1/0/0, 1, 2...    the pyramid levels: one plane per chunk
    RUN/s01_blur/A/1/0/labels/nuclei labels of that field (NGFF image-label)

``put`` queues a plane for the writer thread and returns at once; the writer creates
groups and arrays as planes need them, writes the plane and its pyramid (2x per level down
to about 256 px), and rewrites the metadata of what grew at most once a second (and when
it runs dry), so a reader opening the run mid-stream finds every well written so far.
Write failures (a full or read-only disk) are counted per reason, with the first message
kept; the viewer goes on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from yaozarrs import v05
from zarr.codecs import BloscCodec, ZstdCodec

from platestream.layering import ImageItem

from ._files import ArrayTemplates, ChunkWriter, write_group, write_node
from ._layout import Locator, PlaneLocation, PlateLayout
from ._wells import WellPosition, row_index, well_position

log = logging.getLogger(__name__)
Array = np.ndarray[Any, Any]
FORMAT = 1  # the run store's own format version (platestream metadata, folder names)
SMALLEST_LEVEL = 256  # pyramid levels halve until the plane fits this many pixels
MAX_LEVELS = 8
METADATA_EVERY_S = 1.0
WRITERS = 3  # planes written at once
AXES = ("t", "c", "z", "y", "x")
# A chunk on disk says "this plane arrived" (a reopened run lists them): write every plane,
# even one that is all zeros.
_ARRAY_CONFIG: dict[str, Any] = {"write_empty_chunks": True}

Done = Callable[[bool], None]  # called by the writer: stored, or not


class StoreError(Exception):
    """A run store cannot be created, opened or read; the message names the path."""


def pyramid_shapes(plane: tuple[int, int]) -> list[tuple[int, int]]:
    """The (y, x) of each level: the plane, then halved until it fits ``SMALLEST_LEVEL``."""
    shapes = [plane]
    while max(shapes[-1]) > SMALLEST_LEVEL and len(shapes) < MAX_LEVELS:
        y, x = shapes[-1]
        shapes.append(((y + 1) // 2, (x + 1) // 2))
    return shapes


def downsample(plane: Array, labels: bool) -> Array:
    """Half the size along y and x: the mean of 2x2 blocks (labels: every other pixel)."""
    if labels or plane.dtype.kind in "bc":
        return plane[..., ::2, ::2].copy()
    y, x = plane.shape[-2:]
    if y % 2 or x % 2:  # repeat the last row/column so the blocks are whole
        pad = [(0, 0)] * (plane.ndim - 2) + [(0, y % 2), (0, x % 2)]
        plane = np.pad(plane, pad, mode="edge")
    small = plane.dtype.kind in "ui" and plane.dtype.itemsize <= 2
    wide: Any = (
        np.uint32 if plane.dtype.kind == "u" and small else (np.int32 if small else np.float64)
    )
    total = plane[..., 0::2, 0::2].astype(wide)
    total += plane[..., 1::2, 0::2]
    total += plane[..., 0::2, 1::2]
    total += plane[..., 1::2, 1::2]
    if small:  # rounded integer mean, in the plane's type
        out: Array = ((total + 2) // 4).astype(plane.dtype)
        return out
    mean = total / 4
    return (np.rint(mean) if plane.dtype.kind in "ui" else mean).astype(plane.dtype)


def _codec(name: str) -> Any:
    if name == "lz4":
        return BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
    if name == "zstd":
        return ZstdCodec(level=1)
    return None


def _hex_color(colormap: str | None) -> str:
    named = {
        "red": "FF0000",
        "green": "00FF00",
        "blue": "0000FF",
        "cyan": "00FFFF",
        "magenta": "FF00FF",
        "yellow": "FFFF00",
    }
    return named.get(colormap or "", "FFFFFF")


@dataclass
class _Image:
    """An image (or label image) group of the store: its levels' metadata, their writers,
    and their zarr arrays once opened (for reading and resizing)."""

    path: str
    folder: Path
    metadata: list[Any]  # zarr ArrayV3Metadata per level, level 0 first
    labels: bool
    channels: int  # the c size the metadata was last written for
    arrays: dict[int, Any] = field(default_factory=dict)  # level -> zarr array, opened
    writers: list[ChunkWriter | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writers = [
            ChunkWriter.of(metadata, self.folder / str(level))
            for level, metadata in enumerate(self.metadata)
        ]

    @property
    def level_count(self) -> int:
        return len(self.metadata)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.metadata[0].shape)

    def array(self, level: int) -> Any:
        """The zarr array of ``level``, opened on first use (call with the store's lock)."""
        array = self.arrays.get(level)
        if array is None:
            opened: Any = zarr.open_array(self.folder / str(level), mode="r+", zarr_format=3)
            array = self.arrays[level] = opened.with_config(_ARRAY_CONFIG)
        return array

    def resize(self, shape: tuple[int, ...]) -> None:
        """Grow every level to hold planes of ``shape`` (t, c, z, y, x of level 0)."""
        for level in range(self.level_count):
            y, x = shape[3], shape[4]
            for _ in range(level):
                y, x = (y + 1) // 2, (x + 1) // 2
            array = self.array(level)
            array.resize((*shape[:3], y, x))
            self.metadata[level] = array.metadata
        self.__post_init__()


@dataclass
class StoreCounters:
    stored: int = 0
    unstored: dict[str, int] | None = None
    queued_bytes: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        if self.unstored is None:
            self.unstored = {}


class RunStore:
    """One run folder, created or reopened. ``put`` from any one thread; ``read`` too."""

    def __init__(self, path: Path, *, title: str = "", codec: str = "lz4") -> None:
        self.path = Path(path)
        self.codec = codec
        # Zarr handles (creating, resizing, reading arrays): the writer vs readers. Planes are
        # written outside it, so a reader never waits for a compression.
        self._lock = threading.RLock()
        self._layout_lock = threading.Lock()  # the locator: locate() vs metadata copies
        self._count_lock = threading.RLock()  # counters and ``written``: never held for I/O
        self.locator = Locator()
        self._images: dict[str, _Image] = {}
        self._on_disk: dict[str, bool] = {}  # image groups of a reopened run, not opened yet
        self._dirty: set[str] = set()  # plates whose metadata must be rewritten
        self._wells_seen: dict[str, set[str]] = {}  # plate -> well paths with a group
        self._fields: dict[tuple[str, str], set[int]] = {}  # (plate, well path) -> fields
        self._declared_wells: set[WellPosition] = set()  # a producer's declared layout
        self.written: set[PlaneLocation] = set()
        # (location, plane, done); a flush marker has no location; None ends the writer
        self._queue: queue.Queue[tuple[PlaneLocation | None, Array | None, Done] | None] = (
            queue.Queue()
        )
        self._queued_bytes = 0
        self._counters = StoreCounters()
        self.title = title
        self._templates = ArrayTemplates(_codec(codec), AXES)
        self.root = self._open_root(title)
        self._load()
        # zarr-python spends most of a plane's write in its own event loop (encode, write):
        # a few writes at a time keep the codec and the disk busy.
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="run-store-write")
        self._slots = threading.Semaphore(2 * WRITERS)  # planes handed to the pool at once
        self._busy: set[PlaneLocation] = set()  # being written
        self._idle = threading.Condition()
        self._defer_until = 0.0  # see defer()
        self._defer_limit = 0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._write_loop, name="run-store", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ opening

    def _open_root(self, title: str) -> Any:
        marker = self.path / "zarr.json"
        if marker.exists():
            try:
                root = zarr.open_group(self.path, mode="r+", zarr_format=3)
                raw = root.attrs.get("platestream")
                info: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
            except Exception as err:  # unreadable JSON, not a group, not Zarr v3
                raise StoreError(
                    f"{marker}: not a platestream run store ({type(err).__name__}: {err}); "
                    "move it away or choose another store_dir"
                ) from err
            version = info.get("format")
            if not isinstance(version, int):
                raise StoreError(
                    f"{marker}: not a platestream run store (no platestream format); "
                    "choose another store_dir"
                )
            if version > FORMAT:
                raise StoreError(
                    f"{self.path}: written by a newer platestream (store format {version}, "
                    f"this one reads {FORMAT}); upgrade platestream to open it"
                )
            self.title = str(info.get("title", self.title))
            return root
        try:
            self.path.mkdir(parents=False, exist_ok=True)
            root = zarr.open_group(self.path, mode="w-", zarr_format=3)
            root.attrs.put(
                {
                    "platestream": {
                        "format": FORMAT,
                        "title": title,
                        "created": datetime.now(UTC).isoformat(timespec="seconds"),
                        "codec": self.codec,
                    }
                }
            )
        except FileNotFoundError as err:
            raise StoreError(
                f"{self.path.parent}: the store folder does not exist; create it or set "
                "store_dir to an existing folder"
            ) from err
        except OSError as err:
            raise StoreError(f"{self.path}: cannot create the run store: {_why(err)}") from err
        return root

    def _load(self) -> None:
        """Read back the plates of a run written before (reopened or restarted)."""
        for name, group in self.root.groups():
            info = group.attrs.get("platestream")
            if not isinstance(info, dict):
                continue
            try:
                layout = PlateLayout.from_json(name, info)
            except (KeyError, TypeError, ValueError) as err:
                raise StoreError(
                    f"{self.path / name / 'zarr.json'}: the plate's platestream metadata is "
                    f"damaged ({err}); the run cannot be reopened"
                ) from err
            self.locator.plates[name] = layout
            if self._load_plane_index(name, layout, info.get("planes")):
                continue
            self._find_unlisted_wells(name, layout)
            self._wells_seen[name] = set(layout.wells)
            for well_path in layout.wells:
                for image_path, labels in self._images_under(name, well_path):
                    self._on_disk[image_path] = labels  # opened when first read or written
                    self.written.update(self._chunks_of(image_path))

    def _load_plane_index(self, plate: str, layout: PlateLayout, index: Any) -> bool:
        """The planes of a plate closed cleanly, from the index ``close`` wrote: no folder
        is listed (a 384-well run on a cold disk lists for 15 s). False if there is none
        (a crash, or an older run): then the folders are listed.

        The index holds only until something is written again, so it is removed from the
        plate's metadata right here; a crash from now on leaves no index behind."""
        if not isinstance(index, dict):
            return False
        written: set[PlaneLocation] = set()
        images: dict[str, bool] = {}
        fields: dict[tuple[str, str], set[int]] = {}
        try:
            for image, planes in index.items():
                parts = f"{plate}/{image}".split("/")
                well = WellPosition(row_index(parts[1]), int(parts[2]) - 1)
                field_index, label = int(parts[3]), parts[5] if len(parts) > 5 else None
                images[f"{plate}/{image}"] = label is not None
                fields.setdefault((plate, f"{parts[1]}/{parts[2]}"), set()).add(field_index)
                for t, c, z in planes:
                    location = PlaneLocation(
                        plate, well, field_index, label, int(t), int(c), int(z)
                    )
                    written.add(location)
        except (ValueError, TypeError, IndexError, AttributeError):
            log.warning("%s: the plane index is unreadable; listing the folders", plate)
            return False
        self._wells_seen[plate] = set(layout.wells)
        self._on_disk.update(images)
        self._fields.update(fields)
        self.written |= written
        with contextlib.suppress(OSError):  # a read-only run: nothing will be written anyway
            self._write_plate(plate, layout.to_json())
        return True

    def _write_plane_index(self) -> None:
        """On a clean close: each plate's written planes in its metadata (see
        ``_load_plane_index``), so reopening lists no folder."""
        by_plate: dict[str, dict[str, list[list[int]]]] = {}
        with self._count_lock:
            written = list(self.written)
        for location in written:
            image = location.image_path.split("/", 1)[1]
            planes = by_plate.setdefault(location.plate, {}).setdefault(image, [])
            planes.append([location.t, location.c, location.z])
        with self._layout_lock:
            infos = {
                name: self.locator.plates[name].to_json()
                for name in by_plate
                if name in self.locator.plates and self._wells_seen.get(name)
            }
        for name, info in infos.items():
            info["planes"] = {image: sorted(p) for image, p in sorted(by_plate[name].items())}
            try:
                self._write_plate(name, info)
            except OSError as err:  # reopening lists the folders instead
                log.warning("%s: no plane index written: %s", self.path / name, _why(err))

    def _find_unlisted_wells(self, plate: str, layout: PlateLayout) -> None:
        """Wells on disk the plate's list lacks (written after its last rewrite, before a
        crash): found by their folders, named as their own metadata says."""
        folder = self.path / plate
        for row in folder.iterdir():
            if not (row.is_dir() and row.name.isalpha() and len(row.name) <= 2):
                continue
            for column in row.iterdir():
                well_path = f"{row.name}/{column.name}"
                if well_path in layout.wells or not column.name.isdigit():
                    continue
                try:
                    attrs = json.loads((column / "zarr.json").read_text()).get("attributes", {})
                except (OSError, ValueError):
                    continue  # not a well group
                named = attrs.get("platestream", {}).get("well") if isinstance(attrs, dict) else ""
                position = WellPosition(row_index(row.name), int(column.name) - 1)
                layout.wells[well_path] = str(named or position.name)

    def _images_under(self, plate: str, well_path: str) -> Iterator[tuple[str, bool]]:
        # Plain os calls on strings: a 384-well run lists tens of thousands of folders here,
        # and pathlib's objects cost more than the listing itself.
        well_dir = os.path.join(self.path, plate, well_path)
        fields: set[int] = set()
        for name in sorted(_listing(well_dir)):
            field_dir = os.path.join(well_dir, name)
            if name.isdigit() and os.path.exists(os.path.join(field_dir, "zarr.json")):
                fields.add(int(name))
                yield f"{plate}/{well_path}/{name}", False
                labels = os.path.join(field_dir, "labels")
                for label in sorted(_listing(labels)):
                    if os.path.exists(os.path.join(labels, label, "zarr.json")):
                        yield f"{plate}/{well_path}/{name}/labels/{label}", True
        self._fields[(plate, well_path)] = fields

    def _open_image(self, image_path: str, labels: bool) -> _Image | None:
        group = zarr.open_group(self.path / image_path, mode="r+", zarr_format=3)
        arrays = {}
        for level in range(MAX_LEVELS):
            if str(level) not in group:
                break
            array: Any = group[str(level)]
            arrays[level] = array.with_config(_ARRAY_CONFIG)
        if not arrays:
            return None
        metadata = [arrays[level].metadata for level in range(len(arrays))]
        folder = self.path / image_path
        image = _Image(image_path, folder, metadata, labels, int(metadata[0].shape[1]), arrays)
        self._images[image_path] = image
        return image

    def _image(self, path: str) -> _Image | None:
        """An image group's arrays, opened on first use (call with ``_lock`` held)."""
        image = self._images.get(path)
        if image is None and path in self._on_disk:
            image = self._open_image(path, self._on_disk.pop(path))
        return image

    def _chunks_of(self, path: str) -> Iterator[PlaneLocation]:
        """The planes of an image on disk: the chunks of level 0 that exist (a listing of
        the default chunk key layout, ``0/c/<t>/<c>/<z>/...``; no array is opened)."""
        parts = path.split("/")
        plate, row, column, field = parts[0], parts[1], parts[2], int(parts[3])
        label = parts[5] if len(parts) > 5 else None
        well = WellPosition(row_index(row), int(column) - 1)
        chunks = os.path.join(self.path, path, "0", "c")
        join, isfile = os.path.join, os.path.isfile
        for t in _listing(chunks):
            t_dir = join(chunks, t)
            for c in _listing(t_dir):
                c_dir = join(t_dir, c)
                for z in _listing(c_dir):
                    if isfile(join(c_dir, z, "0", "0")):  # else a write a crash cut short
                        yield PlaneLocation(plate, well, field, label, int(t), int(c), int(z))

    # ------------------------------------------------------------------- writing

    def declare(self, layout: dict[str, Any]) -> None:
        """A producer's declared plate layout: each plate's NGFF rows and columns span the
        declared wells (a 384-well plate is 16 x 24 from its first well on)."""
        wells = {well_position(value) for value in layout.get("well", ())}
        with self._layout_lock:
            self._declared_wells |= {w for w in wells if w is not None}
            self._dirty |= set(self._wells_seen)

    def locate(
        self, item: ImageItem, display: dict[str, Any] | None = None
    ) -> tuple[PlaneLocation | None, str]:
        with self._layout_lock:
            return self.locator.locate(item, display)

    def put(self, location: PlaneLocation, plane: Array, done: Done) -> None:
        """Queue ``plane`` (owned by the store from now on) for the writer."""
        with self._count_lock:
            self._queued_bytes += plane.nbytes
            if self._queued_bytes > self._defer_limit:
                self._wake.set()
        self._queue.put((location, plane, done))

    @property
    def counters(self) -> StoreCounters:
        with self._count_lock:
            unstored = dict(self._counters.unstored or {})
            return StoreCounters(
                self._counters.stored, unstored, self._queued_bytes, self._counters.error
            )

    def count_unstored(self, reason: str, count: int = 1) -> None:
        with self._count_lock:
            unstored = self._counters.unstored
            assert unstored is not None
            unstored[reason] = unstored.get(reason, 0) + count

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued is written (and the metadata with it)."""
        done = threading.Event()
        self._defer_until = 0.0
        self._wake.set()
        self._queue.put((None, None, lambda _: done.set()))
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        if self._thread.is_alive():
            clean = self.flush(timeout_s)
            self._queue.put(None)
            self._thread.join(timeout_s)
            if clean and not self._thread.is_alive():
                self._write_plane_index()
        self._pool.shutdown(wait=True)

    def _write_loop(self) -> None:
        """Hands planes to the writer pool in order (a plane already being written waits for
        that write, so the newest always wins) and rewrites grown metadata now and then."""
        last_metadata = time.monotonic()
        while True:
            # Grown metadata is rewritten at most once a second (the plate's metadata lists
            # every well: rewriting it per plane would cost in proportion to the plate), and
            # a second after the last plane at the latest.
            pending = self._busy or self._dirty or self.locator.changed
            wait = max(0.0, last_metadata + METADATA_EVERY_S - time.monotonic())
            try:
                job = self._queue.get(timeout=wait if pending else None)
            except queue.Empty:
                self._write_metadata()
                last_metadata = time.monotonic()
                continue
            if job is None:
                self._drain()
                self._write_metadata()
                return
            location, plane, done = job
            if location is None or plane is None:  # a flush marker
                self._drain()
                self._write_metadata()
                done(True)
                continue
            self._wait_for_a_quiet_display()
            self._slots.acquire()
            with self._idle:
                self._idle.wait_for(partial(self._free, location))
                self._busy.add(location)
            self._pool.submit(self._write_job, location, plane, done)
            now = time.monotonic()
            if now - last_metadata > METADATA_EVERY_S:
                self._write_metadata()
                last_metadata = now

    def _write_job(self, location: PlaneLocation, plane: Array, done: Done) -> None:
        ok = False
        try:
            ok = self._write(location, plane)
        finally:
            with self._count_lock:
                self._queued_bytes -= plane.nbytes
            done(ok)
            self._slots.release()
            with self._idle:
                self._busy.discard(location)
                self._idle.notify_all()

    def defer(self, seconds: float, limit_bytes: int) -> None:
        """Hold writing back for ``seconds`` (the display is busy: the GIL and both cores
        are better spent showing images), unless more than ``limit_bytes`` are queued."""
        self._defer_until = time.monotonic() + seconds
        self._defer_limit = limit_bytes

    def _wait_for_a_quiet_display(self) -> None:
        while True:
            wait = self._defer_until - time.monotonic()
            if wait <= 0 or self._queued_bytes > self._defer_limit:
                return
            self._wake.wait(wait)
            self._wake.clear()

    def _free(self, location: PlaneLocation) -> bool:
        return location not in self._busy

    def _drain(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: not self._busy)

    def _write(self, location: PlaneLocation, plane: Array) -> bool:
        try:
            with self._lock:
                image = self._image_for(location, plane)
                plate = self.locator.plates[location.plate]
                if location.label is None and str(location.c) not in plate.windows:
                    plate.windows[str(location.c)] = _window(plane)
                    self._write_image_metadata(image, plate)
                    self._dirty.add(location.plate)
            index: tuple[Any, ...] = (location.t, location.c)
            if plane.ndim == 2:
                index += (location.z,)
            level_plane = plane
            for level in range(image.level_count):  # chunks of their own: no lock
                if level:
                    level_plane = downsample(level_plane, image.labels)
                writer = image.writers[level]
                chunk = tuple(image.metadata[level].chunks[-2:])
                if writer is not None and level_plane.shape[-2:] == chunk:
                    planes = level_plane.reshape(-1, *level_plane.shape[-2:])
                    first_z = index[2] if len(index) == 3 else 0
                    for z, one in enumerate(planes, start=first_z):
                        writer.write((location.t, location.c, z, 0, 0), one[None, None, None])
                else:  # a plane that is not one whole chunk: zarr writes the region
                    region = tuple(slice(0, n) for n in level_plane.shape)
                    with self._lock:
                        array = image.array(level)
                    array[(*index, *region)] = level_plane
            with self._count_lock:
                self.written.add(location)
                self._counters.stored += 1
            return True
        except OSError as err:
            reason = "disk_full" if err.errno == errno.ENOSPC else "write_failed"
            self._failed(reason, f"{self.path}: cannot write: {_why(err)}")
        except Exception as err:  # zarr refused the plane: a bug or a damaged store
            log.exception("storing %s failed", location)
            self._failed("write_failed", f"{self.path}: cannot write: {type(err).__name__}: {err}")
        return False

    def _failed(self, reason: str, message: str) -> None:
        with self._count_lock:
            first = not self._counters.error
            if first:
                self._counters.error = message
            self.count_unstored(reason)
        if first:
            log.error("%s", message)

    def _image_for(self, location: PlaneLocation, plane: Array) -> _Image:
        plate = self.locator.plates[location.plate]
        seen = self._wells_seen.setdefault(location.plate, set())
        well_path = location.well.path
        new_well = well_path not in seen
        seen.add(well_path)
        with self._layout_lock:
            urgent = location.plate in self.locator.urgent
            self.locator.urgent.discard(location.plate)
            info = plate.to_json() if urgent else None
        if info is not None:
            # New channel, site, z, timepoint or label values: their indices are on disk
            # before any chunk that uses them, so a crash never leaves a chunk unexplained.
            self._write_plate(location.plate, info)
        if new_well:
            row = self.path / location.plate / location.well.row
            if not (row / "zarr.json").exists():
                write_group(row)
            self._dirty.add(location.plate)
        fields = self._fields.setdefault((location.plate, well_path), set())
        if location.field not in fields:
            fields.add(location.field)
            self._write_well(location.plate, well_path, fields)
        path = location.image_path
        image = self._image(path)
        labels = location.label is not None
        plane_yx = plane.shape[-2:]
        z_count = plane.shape[0] if plane.ndim == 3 else location.z + 1
        shape = (location.t + 1, 1 if labels else len(plate.channels), z_count, *plane_yx)
        if image is None:
            image = self._create_image(path, plate, shape, plane.dtype, labels)
            if labels:
                self._write_labels_group(location)
        grown = tuple(max(a, b) for a, b in zip(image.shape, shape, strict=True))
        if grown != image.shape:
            image.resize(grown)
            if not labels and grown[1] != image.channels:
                image.channels = grown[1]
                self._write_image_metadata(image, plate)
        return image

    def _create_image(
        self, path: str, plate: PlateLayout, shape: tuple[int, ...], dtype: Any, labels: bool
    ) -> _Image:
        folder = self.path / path
        if (folder / "zarr.json").exists():  # written before a crash, never recorded
            found = self._open_image(path, labels)
            if found is not None:
                return found
        metadata = []
        for level, (y, x) in enumerate(pyramid_shapes((shape[3], shape[4]))):
            level_metadata = self._templates.metadata((*shape[:3], y, x), (1, 1, 1, y, x), dtype)
            write_node(folder / str(level), level_metadata)
            metadata.append(level_metadata)
        image = _Image(path, folder, metadata, labels, shape[1])
        self._images[path] = image
        self._write_image_metadata(image, plate)  # the group last: it says "complete"
        return image

    # ------------------------------------------------------------------ metadata

    def _multiscale(self, image: _Image) -> v05.Multiscale:
        axes: list[Any] = [
            v05.TimeAxis(name="t"),
            v05.ChannelAxis(name="c"),
            v05.SpaceAxis(name="z"),
            v05.SpaceAxis(name="y"),
            v05.SpaceAxis(name="x"),
        ]
        datasets = [
            v05.Dataset(
                path=str(level),
                coordinateTransformations=[
                    v05.ScaleTransformation(scale=[1.0, 1.0, 1.0, 2.0**level, 2.0**level])
                ],
            )
            for level in range(image.level_count)
        ]
        return v05.Multiscale(name=image.path.split("/")[-1], axes=axes, datasets=datasets)

    def _write_image_metadata(self, image: _Image, plate: PlateLayout) -> None:
        if image.labels:
            label = v05.ImageLabel(version="0.5", source=v05.LabelSource(image="../../"))
            model: Any = v05.LabelImage.model_validate(
                {"multiscales": [self._multiscale(image)], "image-label": label}
            )
        else:
            channels = []
            for c, value in enumerate(plate.channels[: image.channels]):
                low, high = plate.windows.get(str(c), (0.0, 65535.0))
                channels.append(
                    v05.OmeroChannel(
                        label=str(value) if value is not None else f"c{c}",
                        color=_hex_color(_channel_colormap(plate, value)),
                        window=v05.OmeroWindow(start=low, end=high, min=low, max=high),
                        active=True,
                    )
                )
            omero = v05.Omero(channels=channels) if channels else None
            model = v05.Image(multiscales=[self._multiscale(image)], omero=omero)
        write_group(image.folder, {"ome": model.model_dump(mode="json", exclude_none=True)})

    def _write_labels_group(self, location: PlaneLocation) -> None:
        field_path = location.image_path.rsplit("/labels/", 1)[0]
        names = sorted(
            entry.name
            for entry in (self.path / field_path / "labels").iterdir()
            if (entry / "zarr.json").exists()
        )
        model = v05.LabelsGroup(labels=names or [str(location.label)])
        write_group(
            self.path / field_path / "labels",
            {"ome": model.model_dump(mode="json", exclude_none=True)},
        )

    def _write_well(self, plate: str, well_path: str, fields: set[int]) -> None:
        model = v05.Well(
            well=v05.WellDef(images=[v05.FieldOfView(path=str(f)) for f in sorted(fields)])
        )
        with self._layout_lock:
            name = self.locator.plates[plate].wells.get(well_path, "")
        write_group(
            self.path / plate / well_path,
            {
                "ome": model.model_dump(mode="json", exclude_none=True),
                "platestream": {"well": name},  # as the items named it (a crash may lose
            },  # the plate's list of wells: reopening finds the well by its folder)
        )

    def _write_metadata(self) -> None:
        """Rewrite the plate metadata of every plate that grew (wells, channels...)."""
        dirty: set[str] = set()
        try:
            with self._lock:
                with self._layout_lock:
                    dirty = self._dirty | self.locator.changed
                    self._dirty, self.locator.changed = set(), set()
                    waiting = {name for name in dirty if name not in self._wells_seen}
                    self._dirty |= waiting  # no group yet: after its first plane
                    plates = {name: self.locator.plates[name].to_json() for name in dirty - waiting}
                for name, layout in sorted(plates.items()):
                    self._write_plate(name, layout)
        except OSError as err:  # tried again after the next plane (nothing is lost)
            with self._lock:
                self._dirty |= dirty
                if not self._counters.error:
                    self._counters.error = f"{self.path}: cannot write metadata: {_why(err)}"

    def _write_plate(self, name: str, info: dict[str, Any]) -> None:
        layout = self.locator.plates[name]
        wells = sorted(
            (WellPosition(row_index(p.split("/")[0]), int(p.split("/")[1]) - 1), p)
            for p in self._wells_seen[name]
        )
        if not wells:
            return
        with self._layout_lock:
            spanned = {w for w, _ in wells} | self._declared_wells
        # Rows and columns from A and 1 to the last well seen or declared by the producer.
        all_rows = list(range(max(w.row_index for w in spanned) + 1))
        all_columns = list(range(max(w.column_index for w in spanned) + 1))
        model = v05.Plate(
            plate=v05.PlateDef(
                name=layout.name,
                rows=[v05.Row(name=WellPosition(r, 0).row) for r in all_rows],
                columns=[v05.Column(name=str(c + 1)) for c in all_columns],
                wells=[
                    v05.PlateWell(path=p, rowIndex=w.row_index, columnIndex=w.column_index)
                    for w, p in wells
                ],
                field_count=max(len(info["site"]), 1),
            )
        )
        write_group(
            self.path / name,
            {"ome": model.model_dump(mode="json", exclude_none=True), "platestream": info},
        )

    # ------------------------------------------------------------------- reading

    def read(self, location: PlaneLocation, level: int = 0) -> Array | None:
        """A plane (or a (Z, Y, X) payload) from disk; None if it was never written."""
        with self._count_lock:
            if location not in self.written:
                return None
        with self._lock:
            image = self._image(location.image_path)
            if image is None or level >= image.level_count:
                return None
            array = image.array(level)
            if location.z >= array.shape[2] and array.shape[2] > 1:
                return None
            try:
                if image.shape[2] > 1 and location.z == 0 and self._is_volume(location):
                    data: Array = np.asarray(array[location.t, location.c])
                else:
                    data = np.asarray(array[location.t, location.c, location.z])
            except OSError as err:
                raise StoreError(f"{self.path / location.image_path}: {_why(err)}") from err
            return data

    def _is_volume(self, location: PlaneLocation) -> bool:
        plate = self.locator.plates[location.plate]
        return not plate.zs or plate.zs == [None]

    def level_count(self, location: PlaneLocation) -> int:
        with self._lock:
            image = self._image(location.image_path)
        return image.level_count if image is not None else 0

    def stored_locations(self) -> dict[str, list[PlaneLocation]]:
        """Every plane on disk, per plate, in the order ``stored_items`` gives them."""
        with self._count_lock:
            written = set(self.written)
        with self._layout_lock:
            plates = set(self.locator.plates)
        by_plate: dict[str, list[PlaneLocation]] = {}
        order = sorted(
            (p for p in written if p.plate in plates),
            key=lambda p: (p.plate, p.label or "", p.well, p.field, p.t, p.c, p.z),
        )
        for location in order:
            by_plate.setdefault(location.plate, []).append(location)
        return by_plate

    def stored_items(self) -> Iterator[tuple[ImageItem, PlaneLocation]]:
        """Every plane on disk as the item it came from (for reopening the run): from the
        plates' metadata and a listing of the chunks, without opening an array."""
        with self._count_lock:
            written = set(self.written)
        with self._layout_lock:
            locations = sorted(
                written,
                key=lambda p: (p.plate, p.label or "", p.well, p.field, p.t, p.c, p.z),
            )
            for location in locations:
                if location.plate in self.locator.plates:
                    yield self.locator.item_of(location), location

    def display_of(self, plate: str) -> dict[str, Any]:
        return dict(self.locator.plates[plate].display)


def _listing(folder: str) -> list[str]:
    """The names in ``folder``; none if it does not exist (or is no folder)."""
    try:
        return os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _window(plane: Array) -> list[float]:
    """The first plane's range: the channel's first display window."""
    if plane.dtype.kind == "c":
        plane = np.abs(plane)
    finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
    if finite.size == 0:
        return [0.0, 1.0]
    low, high = float(finite.min()), float(finite.max())
    return [low, high if high > low else low + 1.0]


def _channel_colormap(plate: PlateLayout, channel: Any) -> str | None:
    display = plate.display
    per_channel = display.get("channel_colormaps", {}) if isinstance(display, dict) else {}
    if isinstance(per_channel, dict) and str(channel) in per_channel:
        return str(per_channel[str(channel)])
    colormap = display.get("colormap") if isinstance(display, dict) else None
    return str(colormap) if colormap else None


def _why(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "the disk is full; free space, or set store_dir to a disk with room"
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{err.strerror} ({err.filename or ''}); set store_dir to a folder you can write, "
            "or store = 'memory'"
        )
    return f"{err.strerror or err} ({err.filename or ''})"


def read_run_info(path: Path) -> dict[str, Any]:
    """The platestream metadata of a run folder (without opening its plates)."""
    marker = path / "zarr.json"
    try:
        info = json.loads(marker.read_text()).get("attributes", {}).get("platestream")
    except (OSError, ValueError, AttributeError) as err:
        raise StoreError(f"{marker}: not a platestream run store ({err})") from err
    if not isinstance(info, dict):
        raise StoreError(f"{marker}: not a platestream run store (no platestream metadata)")
    return info


def folder_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total
