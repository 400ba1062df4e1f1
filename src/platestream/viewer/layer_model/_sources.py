"""Where a viewer's planes live: RAM only, or the run store on disk behind a bounded cache.

Both are ``PlaneSource``s of ``_stack``: ``put`` an owned plane, get a reference back;
``get`` a reference (at a pyramid level) when napari draws it. References are counted
(``retain``/``release``): a plane replaced by a newer one, or cleared, is freed from RAM
once no layer shows it (on disk it stays: nothing is ever deleted from a run).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from platestream.backend import ReceivedImage
from platestream.layering import ImageItem, LayerKind
from platestream.store import (
    PlaneCache,
    PlaneLocation,
    RunStore,
    StoreError,
    downsample,
    new_run_dir,
    store_dir_of,
)

from ._stack import StoredPlane

log = logging.getLogger(__name__)
Array = np.ndarray[Any, Any]
DEFER_WRITES_S = 0.5  # planes are written once the display has been quiet this long
FRAME_SHARE = 16  # a display frame takes at most this share of the plane budget


class MemoryPlanes:
    """``store = "memory"``: every plane in RAM, nothing written, nothing evicted."""

    multiscale = True

    def __init__(self) -> None:
        self._planes: dict[Hashable, Array] = {}
        self._counts: dict[Hashable, int] = {}
        self._ids = itertools.count()
        self.bytes = 0

    def put(self, item: ImageItem, plane: Array) -> Hashable:
        ref = next(self._ids)
        self._planes[ref] = plane
        self._counts[ref] = 0
        self.bytes += plane.nbytes
        return ref

    def get(self, ref: Hashable, level: int = 0) -> Array | None:
        return self._planes.get(ref) if level == 0 else None

    def retain(self, ref: Hashable) -> None:
        if ref in self._counts:
            self._counts[ref] += 1

    def release(self, ref: Hashable) -> None:
        count = self._counts.get(ref)
        if count is None:
            return
        if count <= 1:
            del self._counts[ref]
            self.bytes -= self._planes.pop(ref).nbytes
        else:
            self._counts[ref] = count - 1


@dataclass(frozen=True)
class _Unstored:
    """A plane the run store has no place for (or could not open): RAM cache only."""

    number: int
    labels: bool


@dataclass
class StoreStatus:
    """The disk side of a viewer, for the status report and the dock."""

    path: str = ""
    stored: int = 0
    unstored: int = 0
    unstored_reasons: dict[str, int] | None = None
    queued_mb: float = 0.0
    cache_mb: float = 0.0
    budget_mb: float = 0.0
    error: str = ""


class StoredPlanes:
    """``store = "disk"``: planes go to a ``RunStore`` (written in its thread) and stay in a
    ``PlaneCache`` of at most ``budget_bytes`` - pinned until written, then evictable.
    Reads come from the cache, else the disk; pyramid levels are read from the disk once
    written, and computed from the plane before that."""

    multiscale = True

    def __init__(self, run: RunStore | None, budget_bytes: int, error: str = "") -> None:
        self.run = run
        self.memory = budget_bytes  # what the viewer may grow by (viewer_memory_mb)
        self.cache = PlaneCache(budget_bytes)
        self.error = error  # why there is no run store (shown in the status)
        self.display: dict[str, Any] = {}  # the display config of the planes being put
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._unstored: dict[str, int] = {}
        self.waiting = False  # the display waits for room in the budget (see ``lags``)
        self._wanted = 1  # bytes it waits to have room for
        self.on_relief: Callable[[], None] = lambda: None  # called once there is room

    def declare(self, layout: Any) -> None:
        """The producer's declared plate layout: the plate metadata spans its wells."""
        if self.run is not None:
            self.run.declare(layout)

    @property
    def room(self) -> int:
        """How many bytes of new planes to take now (the rest waits in the receive queue):
        what the budget has room for, and at most a sixteenth of it per display frame - the
        producers' shared pages a frame reads count in this process's memory until the
        frame releases them."""
        return min(self.cache.room, self.cache.budget // FRAME_SHARE)

    def hold(self, grown_bytes: int) -> None:
        """Keep the viewer within its memory: ``grown_bytes`` is how much the process has
        grown since it started. What is not the cache's (napari drawing, the writer's
        buffers, Python's heap) comes off the cache's budget, down to half the memory."""
        overhead = max(0, grown_bytes - self.cache.bytes)
        self.cache.resize(max(self.memory // 2, self.memory - overhead))

    def lags(self, wanted: int) -> bool:
        """The budget has no room for the next ``wanted`` bytes while planes wait for the
        disk: the display takes nothing now, and ``on_relief`` is called once the writer
        made room (a batch larger than the whole budget waits for an empty one)."""
        self._wanted = max(1, min(wanted, self.cache.budget))
        if self.cache.room >= self._wanted:
            return False
        self.waiting = True
        if self.cache.room >= self._wanted:  # made room between the two checks
            self.waiting = False
            return False
        return True

    def _written(self, key: Hashable, plane: Array) -> None:
        """The writer is done with a plane (stored or not): it may be evicted now."""
        self.cache.unpin(key, plane)
        if self.waiting and self.cache.room >= self._wanted:
            self.waiting = False
            self.on_relief()

    def put(self, item: ImageItem, plane: Array) -> Hashable:
        labels = item.kind is LayerKind.LABELS
        if self.run is not None:
            location, why = self.run.locate(item, self.display)
            if location is not None:
                key = (location, 0)
                self.cache.put(key, plane, pinned=True)
                # The display is busy: the disk waits a moment (within half the budget).
                self.run.defer(DEFER_WRITES_S, self.cache.budget // 2)
                self.run.put(location, plane, lambda ok: self._written(key, plane))
                return location
            self.run.count_unstored("no_place")
            log.debug("not stored: %s", why)
        else:
            with self._lock:
                self._unstored["no_store"] = self._unstored.get("no_store", 0) + 1
        ref = _Unstored(next(self._ids), labels)
        self.cache.put((ref, 0), plane)
        return ref

    def get(self, ref: Hashable, level: int = 0) -> Array | None:
        plane = self.cache.get((ref, level))
        if plane is not None:
            return plane
        if isinstance(ref, PlaneLocation) and self.run is not None:
            plane = self.run.read(ref, level)
            if plane is not None:
                self.cache.put((ref, level), plane)
                return plane
        if level == 0:
            return None
        finer = self.get(ref, level - 1)
        if finer is None:
            return None
        labels = ref.label is not None if isinstance(ref, PlaneLocation) else ref.labels  # type: ignore[attr-defined]
        plane = downsample(finer, labels)
        self.cache.put((ref, level), plane)
        return plane

    def retain(self, ref: Hashable) -> None:
        return None  # planes stay on disk; the cache bounds RAM by itself

    def release(self, ref: Hashable) -> None:
        if isinstance(ref, _Unstored):  # nowhere else to read it from: free it now
            self.cache.discard((ref, 0))

    def status(self) -> StoreStatus:
        reasons = dict(self._unstored)
        stored, queued, error = 0, 0, self.error
        if self.run is not None:
            counters = self.run.counters
            stored, queued = counters.stored, counters.queued_bytes
            for reason, count in (counters.unstored or {}).items():
                reasons[reason] = reasons.get(reason, 0) + count
            error = error or counters.error
        return StoreStatus(
            path=str(self.run.path) if self.run is not None else "",
            stored=stored,
            unstored=sum(reasons.values()),
            unstored_reasons=reasons,
            queued_mb=queued / 2**20,
            cache_mb=self.cache.bytes / 2**20,
            budget_mb=self.memory / 2**20,
            error=error,
        )

    def close(self) -> None:
        if self.run is not None:
            self.run.close()


def open_source(
    store: str,
    store_dir: str,
    title: str,
    codec: str = "lz4",
    memory_mb: int = 2048,
    run: str | None = None,
) -> MemoryPlanes | StoredPlanes:
    """The plane source a viewer starts with: RAM only (``store = "memory"``), or a run
    store - ``run`` (an existing run folder: reopened and continued), else a new folder in
    ``store_dir``. A store that cannot be opened leaves the viewer running without one:
    its planes stay in the bounded cache and are counted ``no_store``; ``error`` says why.
    """
    if store == "memory":
        return MemoryPlanes()
    budget = memory_mb << 20
    try:
        path = Path(run) if run else new_run_dir(store_dir_of(store_dir), title)
        if not run and not path.parent.is_dir():
            raise StoreError(
                f"{path.parent}: the store_dir does not exist; create it or set store_dir "
                "to an existing folder (or store = 'memory')"
            )
        if run and not (path / "zarr.json").exists():
            raise StoreError(f"{path}: not a platestream run (no zarr.json)")
        return StoredPlanes(RunStore(path, title=title, codec=codec), budget)
    except StoreError as err:
        log.error("no run store: %s", err)
        return StoredPlanes(None, budget, error=str(err))
    except OSError as err:
        log.error("no run store: %s", err)
        return StoredPlanes(None, budget, error=f"{err.filename or store_dir}: {err.strerror}")


@dataclass
class StoredPlate:
    """One plate of a reopened run, for the display: its display config (wire form), the
    layout its planes span (to declare), its first well's images, and the rest of its
    planes, made into images a slice at a time (``images``) - a run's first view does not
    wait for the items of its whole plate."""

    display: Any
    layout: dict[str, list[Any]]
    first: list[Any]
    rest: list[PlaneLocation]
    source: StoredPlanes

    def images(self, locations: list[PlaneLocation]) -> list[Any]:
        """``ReceivedImage``-like values whose data is a ``StoredPlane`` reference."""
        run = self.source.run
        assert run is not None
        plates = run.locator.plates
        images = []
        for location in locations:
            item = run.locator.item_of(location)
            window = plates[location.plate].windows.get(str(location.c))
            contrast = (window[0], window[1]) if window and location.label is None else None
            data = StoredPlane(location, item.shape, np.dtype(item.dtype), contrast)
            images.append(ReceivedImage(item, data))  # type: ignore[arg-type]
        return images


def stored_plates(source: StoredPlanes) -> list[StoredPlate]:
    """What a reopened run holds, plate by plate."""
    if source.run is None:
        return []
    run = source.run
    plates = []
    for name, locations in run.stored_locations().items():
        first = locations[0].well
        head = [location for location in locations if location.well == first]
        rest = [location for location in locations if location.well != first]
        layout = run.locator.values_of(name, locations)
        plate = StoredPlate(run.display_of(name), layout, [], rest, source)
        plate.first = plate.images(head)
        plates.append(plate)
    return plates


def plates_to_show(source: StoredPlanes) -> list[StoredPlate]:
    """``stored_plates`` with each plate's display config made from its wire form (the
    defaults when a run has none, or one this version cannot read: logged)."""
    from platestream.config import ConfigError, ConfigLayer, NapariStreamingConfig, resolve
    from platestream.schemas import display_from_wire

    default = resolve(NapariStreamingConfig, [ConfigLayer(NapariStreamingConfig(), "run")]).value
    plates = stored_plates(source)
    for plate in plates:
        try:
            plate.display = display_from_wire(plate.display) if plate.display else default
        except (ConfigError, ValueError, TypeError) as err:
            log.warning("run display config unreadable (%s)", err)
            plate.display = default
    return plates
