"""The run store: OME-Zarr HCS layout, read back by well-kept readers; reopening; the cache
bound; pyramids; faults (a real full disk, read-only and missing folders, damaged stores)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.layering import ImageItem, LayerKind, layout_of
from platestream.store import (
    FORMAT,
    PlaneCache,
    RunStore,
    StoreError,
    downsample,
    list_runs,
    plate_name,
    pyramid_shapes,
    remove_run,
    resolve_run,
    well_position,
)

Array = np.ndarray[Any, Any]
WELLS = ["A01", "A02", "B01", "C12"]
CHANNELS = ["DAPI", "GFP"]
SITES = [1, 2, 3]


def item(
    well: str, site: int, channel: str, kind: LayerKind = LayerKind.IMAGE, **extra: Any
) -> ImageItem:
    dtype = "uint32" if kind is LayerKind.LABELS else "uint16"
    components = {"well": well, "site": site, "channel": channel, **extra}
    return ImageItem(components, 1, "blur", (40, 30), dtype, kind=kind)


def pixels(number: int, kind: LayerKind = LayerKind.IMAGE) -> Array:
    dtype = np.uint32 if kind is LayerKind.LABELS else np.uint16
    plane = np.full((40, 30), number, dtype)
    plane[0, 0] = number + 1  # not uniform: a window of its own
    return plane


def write_plate(store: RunStore) -> dict[tuple[str, int, str, str], Array]:
    """The test plate: images of every well/site/channel, labels of DAPI at every site."""
    written: dict[tuple[str, int, str, str], Array] = {}
    number = 0
    for well in WELLS:
        for site in SITES:
            for channel in CHANNELS:
                number += 1
                plane = pixels(number)
                location, why = store.locate(item(well, site, channel), {"colormap": "gray"})
                assert location is not None, why
                store.put(location, plane, lambda ok: None)
                written[(well, site, channel, "image")] = plane
            labels = pixels(1000 + number, LayerKind.LABELS)
            location, _ = store.locate(item(well, site, "DAPI", LayerKind.LABELS))
            assert location is not None
            store.put(location, labels, lambda ok: None)
            written[(well, site, "DAPI", "labels")] = labels
    return written


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "run-1"


@pytest.fixture
def store(run_dir: Path) -> Iterator[RunStore]:
    run_dir.parent.mkdir(parents=True)
    opened = RunStore(run_dir, title="test plate")
    yield opened
    opened.close()


def test_well_names_and_plate_names() -> None:
    assert well_position("A01").path == "A/1"  # type: ignore[union-attr]
    assert well_position("AF48").path == "AF/48"  # type: ignore[union-attr]
    assert well_position("r02c03").name == "B03"  # type: ignore[union-attr]
    assert well_position("h7").row == "H"  # type: ignore[union-attr]
    assert well_position("A00") is None and well_position("plate") is None
    image = ImageItem({"well": "A01", "function": 2}, 3, "seg ment", (4, 4), "uint8")
    assert plate_name(image) == "s03_seg-ment_function-2"


def test_the_store_is_an_ngff_plate_a_well_kept_reader_reads(
    store: RunStore, run_dir: Path
) -> None:
    written = write_plate(store)
    assert store.flush(30)
    assert store.counters.stored == len(written) and not store.counters.unstored
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    plate_path = run_dir / "s01_blur"
    plate = next(iter(Reader(parse_url(str(plate_path)))()))
    spec = plate.specs[0]
    assert type(spec).__name__ == "Plate"
    assert set(spec.well_paths) == {"A/1", "A/2", "B/1", "C/12"}
    assert plate.metadata["channel_names"] == CHANNELS
    # The reader stitches field 0 of every well into one plate image, row by column.
    stitched = plate.data[0]
    rows, columns = list(spec.row_names), list(spec.col_names)
    for well in WELLS:
        position = well_position(well)
        assert position is not None
        r, c = rows.index(position.row), columns.index(position.column)
        for ch, channel in enumerate(CHANNELS):
            tile = np.asarray(stitched[0, ch, 0, r * 40 : (r + 1) * 40, c * 30 : (c + 1) * 30])
            np.testing.assert_array_equal(tile, written[(well, 1, channel, "image")])
    import zarr

    root = zarr.open_group(plate_path, mode="r")
    for (well, site, channel, kind), plane in written.items():
        position = well_position(well)
        assert position is not None
        field = SITES.index(site)
        image = root[f"{position.path}/{field}"]
        if kind == "image":
            c = CHANNELS.index(channel)
            np.testing.assert_array_equal(image["0"][0, c, 0], plane)
            omero = image.attrs["ome"]["omero"]["channels"]
            assert [ch["label"] for ch in omero] == CHANNELS
        else:
            label = image[f"labels/{channel}"]
            np.testing.assert_array_equal(label["0"][0, 0, 0], plane)
            assert "image-label" in label.attrs["ome"]
    well_group = root["A/1"]
    assert [f["path"] for f in well_group.attrs["ome"]["well"]["images"]] == ["0", "1", "2"]
    import yaozarrs

    yaozarrs.validate_zarr_store(str(plate_path))  # raises on any NGFF violation


def test_the_plate_metadata_is_readable_while_the_run_is_written(
    store: RunStore, run_dir: Path
) -> None:
    for number, well in enumerate(WELLS[:2]):
        location, _ = store.locate(item(well, 1, "DAPI"))
        assert location is not None
        store.put(location, pixels(number), lambda ok: None)
    assert store.flush(30)
    meta = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
    assert {w["path"] for w in meta["ome"]["plate"]["wells"]} == {"A/1", "A/2"}
    location, _ = store.locate(item("C12", 1, "DAPI"))
    assert location is not None
    store.put(location, pixels(9), lambda ok: None)
    assert store.flush(30)
    meta = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
    assert {w["path"] for w in meta["ome"]["plate"]["wells"]} == {"A/1", "A/2", "C/12"}


def test_a_declared_layout_gives_the_plate_its_full_geometry(
    store: RunStore, run_dir: Path
) -> None:
    store.declare({"well": ["A01", "P24", "not a well"], "site": [1, 2]})
    location, _ = store.locate(item("B03", 1, "DAPI"))
    assert location is not None
    store.put(location, pixels(5), lambda ok: None)
    assert store.flush(30)
    plate = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
    spec = plate["ome"]["plate"]
    assert [r["name"] for r in spec["rows"]] == list("ABCDEFGHIJKLMNOP")
    assert [c["name"] for c in spec["columns"]] == [str(n) for n in range(1, 25)]
    assert [w["path"] for w in spec["wells"]] == ["B/3"]  # only the wells that exist


def test_a_step_shown_with_two_display_configs_gets_a_plate_for_each(
    store: RunStore, run_dir: Path
) -> None:
    from platestream.config import NapariStreamingConfig, resolve_current
    from platestream.schemas import display_to_wire

    gray = display_to_wire(resolve_current(NapariStreamingConfig()).value)
    magenta = dict(gray, colormap="magenta", napari_port=7000)
    gray_again = dict(json.loads(json.dumps(gray)), napari_port=6000)  # other transport only
    for display, well in ((gray, "A01"), (magenta, "A02"), (gray_again, "A03"), (magenta, "A04")):
        location, _ = store.locate(item(well, 1, "DAPI"), display)
        assert location is not None
        store.put(location, pixels(1), lambda ok: None)
    assert store.flush(30)
    assert sorted(store.locator.plates) == ["s01_blur", "s01_blur_display-2"]
    assert sorted(store.locator.plates["s01_blur"].wells) == ["A/1", "A/3"]
    assert store.display_of("s01_blur_display-2")["colormap"] == "magenta"
    store.close()
    again = RunStore(run_dir)
    try:
        plates = {location.plate for _, location in again.stored_items()}
        assert plates == {"s01_blur", "s01_blur_display-2"}
        location, _ = again.locate(item("B01", 1, "DAPI"), dict(magenta))  # continued
        assert location is not None and location.plate == "s01_blur_display-2"
    finally:
        again.close()


def test_a_reopened_run_gives_back_every_item_and_pixel(store: RunStore, run_dir: Path) -> None:
    written = write_plate(store)
    store.close()
    again = RunStore(run_dir)
    try:
        seen = {}
        for stored, location in again.stored_items():
            lookup = stored.lookup
            kind = "labels" if stored.kind is LayerKind.LABELS else "image"
            key = (lookup["well"], lookup["site"], lookup["channel"], kind)
            assert stored.step_index == 1 and stored.step_name == "blur"
            assert stored.shape == (40, 30)
            plane = again.read(location)
            assert plane is not None
            seen[key] = plane
        assert seen.keys() == written.keys()
        for key, plane in written.items():
            np.testing.assert_array_equal(seen[key], plane)
        assert again.title == "test plate"
    finally:
        again.close()


def test_a_plates_component_values_come_without_making_its_items(
    store: RunStore, run_dir: Path
) -> None:
    """Reopening declares each plate's layout from its planes' places alone: the same
    values, in the same order, as the layout of the items they came from."""
    write_plate(store)
    for well in ("B01", "A01"):  # another plate: z, timepoints and an extra component
        for z in (2, 0):
            for t in (5, 1):
                extra = {"z_index": z, "timepoint": t, "function": 3}
                location, why = store.locate(item(well, 2, "GFP", **extra), {})
                assert location is not None, why
                store.put(location, pixels(z + t), lambda ok: None)
    store.close()
    again = RunStore(run_dir)
    try:
        by_plate = again.stored_locations()
        assert len(by_plate) == 2
        items_by_plate: dict[str, list[Any]] = {}
        for stored, location in again.stored_items():
            items_by_plate.setdefault(location.plate, []).append(stored.lookup)
        for plate, locations in by_plate.items():
            assert len(locations) == len(items_by_plate[plate])
            got = again.locator.values_of(plate, locations)
            assert got == layout_of(items_by_plate[plate])
        assert any(
            found.get("z_index") == [2, 0]
            for found in (again.locator.values_of(p, locs) for p, locs in by_plate.items())
        )
    finally:
        again.close()


def test_a_continued_run_appends_and_rewrites_nothing(store: RunStore, run_dir: Path) -> None:
    write_plate(store)
    store.close()
    chunk = run_dir / "s01_blur" / "A" / "1" / "0" / "0" / "c" / "0" / "0" / "0" / "0" / "0"
    before = chunk.stat().st_mtime_ns
    again = RunStore(run_dir)
    location, _ = again.locate(item("H07", 1, "RFP"))  # a new well and a new channel
    assert location is not None and location.c == 2
    again.put(location, pixels(77), lambda ok: None)
    again.close()
    assert chunk.stat().st_mtime_ns == before
    third = RunStore(run_dir)
    try:
        items = list(third.stored_items())
        assert len(items) == len(WELLS) * len(SITES) * 3 + 1
        assert any(i.lookup["well"] == "H07" and i.lookup["channel"] == "RFP" for i, _ in items)
    finally:
        third.close()


# A writer killed mid-stream: planes of a 16 x 24 plate, 3 sites, 2 channels, a label.
_CRASHING_WRITER = """
import sys, threading
from collections import deque
from pathlib import Path
import numpy as np
from platestream.layering import ImageItem, LayerKind, layout_of
from platestream.store import RunStore
store = RunStore(Path(sys.argv[1]), title="crash")
number, backlog = 0, deque()
for row in "ABCDEFGHIJKLMNOP":
    for column in range(1, 25):
        for site in (1, 2, 3):
            for channel in ("DAPI", "GFP", "nuclei"):
                kind = LayerKind.LABELS if channel == "nuclei" else LayerKind.IMAGE
                components = {"well": f"{row}{column:02d}", "site": site, "channel": channel}
                item = ImageItem(components, 1, "blur", (40, 30), "uint16", kind=kind)
                location, _ = store.locate(item)
                number += 1
                plane = np.full((40, 30), number % 60000, np.uint16)
                written = threading.Event()
                store.put(location, plane, lambda ok, written=written: written.set())
                backlog.append(written)
                if len(backlog) > 100:  # a producer held back by the writer, never flushing
                    backlog.popleft().wait(30)
                if number % 50 == 0:
                    print(store.counters.stored, flush=True)
store.close()
"""


def _expected(lookup: Any) -> int:
    """The number the crashing writer wrote into a plane (its position in the loop)."""
    well = str(lookup["well"])
    row, column = "ABCDEFGHIJKLMNOP".index(well[0]), int(well[1:]) - 1
    channel = ["DAPI", "GFP", "nuclei"].index(str(lookup.get("channel", "nuclei")))
    return ((row * 24 + column) * 3 + int(lookup["site"]) - 1) * 3 + channel + 1


def test_a_run_whose_viewer_was_killed_reopens_whole_and_continues(tmp_path: Path) -> None:
    """SIGKILL mid-stream: every plane on disk is reopened with its own pixels (new wells,
    a new label, nothing unexplained), and continuing the run rewrites none of them."""
    run_dir = tmp_path / "run"
    writer = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        for line in writer.stdout:  # ends if the writer dies (then the assert below fails)
            if int(line) >= 1500:
                break
        writer.kill()  # mid-write: chunks, well groups and the plate's list in flight
    finally:
        writer.kill()
        writer.wait(timeout=30)
    on_disk = {
        path.relative_to(run_dir) for path in run_dir.rglob("0/c/*/*/*/0/0") if path.is_file()
    }
    assert len(on_disk) >= 1500
    reopened = RunStore(run_dir)
    try:
        items = list(reopened.stored_items())
        assert len(items) == len(on_disk)  # every plane on disk, and no other
        for stored, location in items:
            plane = reopened.read(location)
            assert plane is not None
            assert int(plane[0, 0]) == _expected(stored.lookup) % 60000, stored.lookup
        before = {path: (run_dir / path).read_bytes() for path in sorted(on_disk)[::25]}
        wells = {str(stored.lookup["well"]) for stored, _ in items}
        newest = max(wells, key=lambda w: ("ABCDEFGHIJKLMNOP".index(w[0]), int(w[1:])))
        for site in (1, 2, 3):  # the last well again, whole, with a new channel
            for channel in ("DAPI", "GFP", "RFP"):
                again = ImageItem(
                    {"well": newest, "site": site, "channel": channel},
                    1,
                    "blur",
                    (40, 30),
                    "uint16",
                )
                location, _ = reopened.locate(again)
                assert location is not None
                reopened.put(location, np.full((40, 30), 7, np.uint16), lambda ok: None)
        assert reopened.flush(30)
    finally:
        reopened.close()
    for path, content in before.items():
        if newest not in _well_of(path):
            assert (run_dir / path).read_bytes() == content, path
    third = RunStore(run_dir)
    try:
        channels = {str(s.lookup.get("channel")) for s, _ in third.stored_items()}
        assert channels == {"DAPI", "GFP", "RFP", "nuclei"}
    finally:
        third.close()


def _well_of(path: Path) -> str:
    row, column = path.parts[1], int(path.parts[2])
    return f"{row}{column:02d}"


def test_pyramid_levels_halve_down_to_about_256_pixels() -> None:
    assert pyramid_shapes((2160, 2160)) == [
        (2160, 2160),
        (1080, 1080),
        (540, 540),
        (270, 270),
        (135, 135),
    ]
    assert pyramid_shapes((256, 100)) == [(256, 100)]
    plane = np.arange(25, dtype=np.uint16).reshape(5, 5)
    half = downsample(plane, labels=False)
    assert half.shape == (3, 3) and half.dtype == np.uint16
    assert half[0, 0] == round((0 + 1 + 5 + 6) / 4)
    labels = np.array([[1, 2], [3, 4]], np.uint32)
    assert downsample(labels, labels=True).tolist() == [[1]]  # labels are never averaged


def test_large_planes_are_stored_with_their_pyramid(store: RunStore, run_dir: Path) -> None:
    big = ImageItem({"well": "A01", "site": 1, "channel": "DAPI"}, 1, "blur", (1024, 600), "uint16")
    location, _ = store.locate(big)
    assert location is not None
    plane = np.random.default_rng(0).integers(0, 4000, (1024, 600), dtype=np.uint16)
    store.put(location, plane, lambda ok: None)
    assert store.flush(30)
    assert store.level_count(location) == 3
    level2 = store.read(location, 2)
    assert level2 is not None and level2.shape == (256, 150)
    np.testing.assert_array_equal(level2, downsample(downsample(plane, False), False))


def test_the_cache_stays_within_its_budget_but_never_drops_unwritten_planes() -> None:
    plane_bytes = 40 * 30 * 2
    cache = PlaneCache(budget_bytes=10 * plane_bytes)
    for number in range(100):
        cache.put(("p", number), pixels(number))
        assert cache.bytes <= cache.budget
    assert len(cache) == 10 and cache.evicted == 90
    assert cache.get(("p", 99)) is not None and cache.get(("p", 0)) is None
    for number in range(30):  # the disk lags: 30 planes wait for it
        cache.put(("w", number), pixels(number), pinned=True)
    assert cache.congested and cache.pinned_bytes == 30 * plane_bytes
    assert all(cache.get(("w", n)) is not None for n in range(30))  # never evicted
    for number in range(30):
        cache.unpin(("w", number))
    assert not cache.congested and cache.bytes <= cache.budget
    assert cache.peak_bytes <= 40 * plane_bytes


def test_a_smaller_budget_evicts_at_once_but_keeps_unwritten_planes() -> None:
    plane_bytes = 40 * 30 * 2
    cache = PlaneCache(budget_bytes=10 * plane_bytes)
    for number in range(8):
        cache.put(("p", number), pixels(number))
    cache.put(("w", 0), pixels(0), pinned=True)
    cache.resize(3 * plane_bytes)
    assert cache.budget == 3 * plane_bytes and cache.bytes == 3 * plane_bytes
    assert cache.get(("w", 0)) is not None  # pinned: kept
    assert [cache.get(("p", n)) is not None for n in (5, 6, 7)] == [False, True, True]
    assert cache.room == 2 * plane_bytes


def test_a_newer_format_and_a_damaged_store_are_refused_by_name(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    RunStore(newer, title="x").close()
    marker = newer / "zarr.json"
    meta = json.loads(marker.read_text())
    meta["attributes"]["platestream"]["format"] = FORMAT + 1
    marker.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=rf"{newer}: written by a newer platestream.*upgrade"):
        RunStore(newer)
    damaged = tmp_path / "damaged"
    RunStore(damaged).close()
    (damaged / "zarr.json").write_text("{ not json")
    with pytest.raises(StoreError, match=rf"{damaged / 'zarr.json'}: not a platestream run"):
        RunStore(damaged)
    with pytest.raises(StoreError, match="store folder does not exist"):
        RunStore(tmp_path / "missing" / "run")


def test_a_read_only_store_dir_is_refused_by_name(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    if os.geteuid() == 0:  # root writes anywhere: a read-only file system, for real
        with (
            small_disk(locked, "1m", read_only=True),
            pytest.raises(StoreError, match=rf"{locked / 'run'}: .*store_dir"),
        ):
            RunStore(locked / "run")
        return
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError, match=rf"{locked / 'run'}: .*store_dir"):
        RunStore(locked / "run")


def test_runs_are_listed_resolved_and_removed_only_when_asked(
    store: RunStore, run_dir: Path
) -> None:
    write_plate(store)
    store.close()
    (run_dir.parent / "not-a-run").mkdir()
    runs = list_runs(run_dir.parent)
    assert [r.name for r in runs] == ["run-1"]
    assert runs[0].title == "test plate" and runs[0].plates == ("s01_blur",)
    assert runs[0].size_bytes > 0
    assert resolve_run("run", run_dir.parent) == run_dir
    with pytest.raises(StoreError, match="no run 'x'"):
        resolve_run("x", run_dir.parent)
    with pytest.raises(StoreError, match="not a platestream run"):
        remove_run(run_dir.parent / "not-a-run")
    assert remove_run(run_dir) == runs[0].size_bytes
    assert not run_dir.exists() and (run_dir.parent / "not-a-run").exists()


@contextlib.contextmanager
def small_disk(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``path`` (root only)."""
    path.mkdir(parents=True)
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting needs root")
def test_a_full_disk_is_counted_named_and_survived(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        store = RunStore(disk / "run", title="full", codec="none")
        results: list[bool] = []
        noise = np.random.default_rng(3)
        for site in range(1, 9):  # 8 planes of 256 KiB into 1 MiB: some cannot fit
            location, _ = store.locate(
                ImageItem({"well": "A01", "site": site}, 1, "s", (256, 512), "uint16")
            )
            assert location is not None
            plane = noise.integers(0, 65535, (256, 512), dtype=np.uint16)
            store.put(location, plane, results.append)
        assert store.flush(30)
        counters = store.counters
        assert len(results) == 8 and results.count(True) == counters.stored
        assert counters.unstored == {"disk_full": results.count(False)}
        assert results.count(False) >= 4
        assert counters.error.startswith(f"{disk / 'run'}: cannot write: the disk is full")
        assert "store_dir" in counters.error
        store.close()


def test_a_cleanly_closed_run_reopens_from_its_plane_index_without_listing(
    store: RunStore, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write_plate(store)
    store.close()
    plate = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
    assert sum(len(p) for p in plate["platestream"]["planes"].values()) == len(written)

    def no_listing(*_: Any) -> Any:
        raise AssertionError("a cleanly closed run lists no chunk folder")

    with monkeypatch.context() as patched:
        patched.setattr(RunStore, "_chunks_of", no_listing)
        patched.setattr(RunStore, "_images_under", no_listing)
        again = RunStore(run_dir)
    try:
        items = list(again.stored_items())
        assert len(items) == len(written)
        for stored, location in items:
            plane = again.read(location)
            assert plane is not None
            kind = "labels" if location.label is not None else "image"
            lookup = stored.lookup
            key = (lookup["well"], lookup["site"], lookup.get("channel", "DAPI"), kind)
            np.testing.assert_array_equal(plane, written[key])
        # open again: the index is gone until the next clean close (a crash now lists)
        plate = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
        assert "planes" not in plate["platestream"]
    finally:
        again.close()
    plate = json.loads((run_dir / "s01_blur" / "zarr.json").read_text())["attributes"]
    assert sum(len(p) for p in plate["platestream"]["planes"].values()) == len(written)
