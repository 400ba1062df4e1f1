"""Where a viewer's planes live (Qt-free): RAM, or a run store behind a bounded cache; a
store that cannot be opened; a disk that lags (backpressure, then relief)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from platestream.layering import ImageItem
from platestream.store import PlaneLocation
from platestream.viewer.layer_model import MemoryPlanes, StoredPlanes, open_source


def item(well: str, site: int = 1) -> ImageItem:
    return ImageItem({"well": well, "site": site}, 0, "raw", (64, 64), "uint16")


def plane(value: int) -> np.ndarray:
    return np.full((64, 64), value, np.uint16)


def test_memory_and_disk_sources(tmp_path: Path) -> None:
    assert isinstance(open_source("memory", "", "t"), MemoryPlanes)
    source = open_source("disk", str(tmp_path), "my screen", memory_mb=64)
    assert isinstance(source, StoredPlanes) and source.run is not None and not source.error
    assert source.run.path.parent == tmp_path and source.run.path.name.endswith("_my-screen")
    ref = source.put(item("A01"), plane(7))
    assert isinstance(ref, PlaneLocation)
    assert source.run.flush(30)
    source.cache.clear()  # gone from RAM: read back from disk
    back = source.get(ref)
    assert back is not None and int(back.max()) == 7
    assert source.status().stored == 1
    source.close()


def test_a_missing_store_dir_leaves_the_viewer_running_without_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "there"
    source = open_source("disk", str(missing), "t", memory_mb=64)
    assert isinstance(source, StoredPlanes) and source.run is None
    assert str(missing) in source.error and "store_dir" in source.error
    ref = source.put(item("A01"), plane(3))
    got = source.get(ref)
    assert got is not None and int(got.max()) == 3  # still shown, from the cache
    status = source.status()
    assert status.unstored_reasons == {"no_store": 1} and status.error == source.error


def test_items_without_a_plate_position_are_shown_and_counted(tmp_path: Path) -> None:
    source = open_source("disk", str(tmp_path), "t", memory_mb=64)
    assert isinstance(source, StoredPlanes)
    ref = source.put(ImageItem({"channel": "DAPI"}, 0, "raw", (64, 64), "uint16"), plane(5))
    got = source.get(ref)
    assert got is not None and int(got.max()) == 5
    assert source.status().unstored_reasons == {"no_place": 1}
    source.close()


def stalled_disk(
    tmp_path: Path, memory_mb: int, planes: int
) -> tuple[StoredPlanes, threading.Event, np.ndarray]:
    """A disk source whose writer takes nothing for now, holding ``planes`` planes of
    2 MiB; the event is set when it relieves the display."""
    source = open_source("disk", str(tmp_path), "t", memory_mb=memory_mb)
    assert isinstance(source, StoredPlanes) and source.run is not None
    relieved = threading.Event()
    source.on_relief = relieved.set
    source.run.defer(600.0, 1 << 40)  # the disk takes nothing for now
    big = np.zeros((1024, 1024), np.uint16)  # 2 MiB
    for site in range(1, planes + 1):
        source.put(ImageItem({"well": "A01", "site": site}, 0, "raw", big.shape, "uint16"), big)
    return source, relieved, big


def test_a_lagging_disk_is_backpressure_then_relief(tmp_path: Path) -> None:
    source, relieved, big = stalled_disk(tmp_path, memory_mb=17, planes=9)  # 18 MiB waiting
    assert source.cache.congested and source.cache.pinned_bytes == 9 * big.nbytes
    assert source.lags(big.nbytes)  # what the pump asks before it takes the next batch
    assert source.run.flush(60)  # the disk catches up
    assert relieved.wait(10) and not source.cache.congested and not source.lags(big.nbytes)
    assert source.cache.bytes <= source.cache.budget
    assert source.status().stored == 9
    source.close()


def test_the_next_batch_waits_until_the_budget_has_room_for_all_of_it(tmp_path: Path) -> None:
    source, relieved, _ = stalled_disk(tmp_path, memory_mb=16, planes=5)  # 6 MiB of room left
    assert not source.cache.congested and source.cache.room == 6 << 20
    assert not source.lags(6 << 20)
    assert source.lags(8 << 20)  # a batch of four planes would overshoot the budget
    assert source.lags(64 << 20)  # larger than the budget: waits for an empty cache
    assert source.run.flush(60)
    assert relieved.wait(10) and source.cache.pinned_bytes == 0
    assert not source.lags(64 << 20)  # taken alone, once nothing else waits
    # a display frame takes a sixteenth of the budget (at least the next batch)
    assert source.room == (16 << 20) // 16
    source.close()


def test_what_the_rest_of_the_viewer_grows_by_comes_off_the_cache(tmp_path: Path) -> None:
    source = open_source("disk", str(tmp_path), "t", memory_mb=64)
    assert isinstance(source, StoredPlanes) and source.run is not None
    big = np.zeros((1024, 1024), np.uint16)
    for site in range(1, 11):
        source.put(ImageItem({"well": "A01", "site": site}, 0, "raw", big.shape, "uint16"), big)
    assert source.run.flush(60)
    assert source.cache.bytes == 20 << 20
    source.hold((20 << 20) + (24 << 20))  # the process grew by the cache + 24 MiB more
    assert source.cache.budget == 40 << 20
    source.hold(200 << 20)  # however much: the cache keeps half the memory
    assert source.cache.budget == 32 << 20
    source.hold(0)
    assert source.cache.budget == 64 << 20
    source.close()
