"""The shared-memory pool in one process: reuse, seqlock, validation, failures."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from platestream.backend.shm import _reader as reader_module
from platestream.backend.shm._pool import SlotPool
from platestream.backend.shm._reader import Overwritten, PoolReader, SlotError
from platestream.backend.shm._segment import HAS_MEMFD, PAGE, Segment, SegmentError
from platestream.schemas import PoolInfo, PoolKind, ShmPixels

from ..hygiene import our_segments
from .helpers import run_python

KINDS = [PoolKind.NAMED] + ([PoolKind.MEMFD] if HAS_MEMFD else [])
MiB = 1 << 20


@pytest.fixture(params=KINDS, ids=lambda k: k.value)
def pool_and_reader(request: pytest.FixtureRequest) -> Iterator[tuple[SlotPool, PoolReader]]:
    pool = SlotPool(4 * MiB, request.param, slots=16)
    reader = PoolReader(pool.segment.info(), os.getpid())
    pool.segment.unlink()
    yield pool, reader
    reader.close()
    pool.close()


def write(
    pool: SlotPool,
    array: np.ndarray,
    seq: int,
    plane: Any = "p",
    live: bool = False,
    released: int = 0,
) -> ShmPixels:
    slot = pool.acquire(array.nbytes, plane, seq, live, released=released)
    assert slot is not None
    return pool.write(slot, array, seq, plane)


def test_pixels_round_trip_whatever_the_strides(
    pool_and_reader: tuple[SlotPool, PoolReader],
) -> None:
    pool, reader = pool_and_reader
    source = np.arange(200 * 300, dtype=np.uint16).reshape(200, 300)
    released = 0
    for array in (source, source[:, ::3], source.T, source[::-1, 10:20]):
        ref = write(pool, array, seq=1, released=released)
        released = 1
        out = reader.copy_out(ref, array.shape, array.dtype)
        np.testing.assert_array_equal(out, array)
        assert out.flags.c_contiguous and out.flags.writeable


def test_no_name_is_left_once_the_viewer_mapped_the_pool(
    pool_and_reader: tuple[SlotPool, PoolReader],
) -> None:
    assert not our_segments()


def test_slots_are_reused_only_once_acknowledged() -> None:
    pool = SlotPool(4 * MiB, slots=8)
    try:
        first = pool.acquire(MiB, "a", 1, live=False)
        assert first is not None
        pool.write(first, np.zeros(MiB, np.uint8), 1, "a")
        second = pool.acquire(MiB, "b", 2, live=False)
        assert second is not None and second.index != first.index
        assert pool.acquire(MiB, "c", 3, live=False, released=1) is first  # free again, best fit
    finally:
        pool.close()


def test_no_slot_is_carved_past_the_window_while_something_is_in_flight() -> None:
    pool = SlotPool(16 * MiB, slots=16)
    try:
        first = pool.acquire(MiB, "a", 1, live=False, carve=False)
        assert first is not None  # nothing in flight: a slot is carved whatever the window
        pool.write(first, np.zeros(MiB, np.uint8), 1, "a")
        assert pool.bytes_in_flight(released=0) == MiB
        assert pool.acquire(MiB, "b", 2, live=False, carve=False) is None  # wait instead
        assert pool.acquire(MiB, "b", 2, live=False, released=1, carve=False) is first
        assert pool.acquire(MiB, "c", 2, live=False, carve=True) is not first  # room: carved
    finally:
        pool.close()


def test_a_full_pool_waits_in_lossless_and_supersedes_the_same_plane_in_live() -> None:
    pool = SlotPool(PAGE * 3 + 64 * 1024 * 2 + 4096, slots=2)
    try:
        for seq, plane in ((1, "a"), (2, "b")):
            slot = pool.acquire(64 * 1024, plane, seq, live=False)
            assert slot is not None
            pool.write(slot, np.zeros(64 * 1024, np.uint8), seq, plane)
        assert pool.acquire(64 * 1024, "a", 3, live=False) is None
        assert pool.acquire(64 * 1024, "c", 3, live=True) is None  # a new plane: no victim
        taken = pool.acquire(64 * 1024, "a", 3, live=True)
        assert taken is not None and taken.plane == "a"  # newest of plane "a" wins
    finally:
        pool.close()


def test_layout_starts_over_for_other_sizes_once_nothing_is_in_flight() -> None:
    pool = SlotPool(8 * MiB, slots=64)
    try:
        for seq in range(1, 8):
            slot = pool.acquire(MiB - PAGE, seq, seq, live=False)
            assert slot is not None
            pool.write(slot, np.zeros(MiB - PAGE, np.uint8), seq, seq)
        assert pool.acquire(4 * MiB, "big", 8, live=False) is None
        assert pool.acquire(4 * MiB, "big", 8, live=False, released=7) is not None
    finally:
        pool.close()


def test_a_slot_rewritten_before_the_copy_is_dropped(
    pool_and_reader: tuple[SlotPool, PoolReader],
) -> None:
    pool, reader = pool_and_reader
    array = np.ones((64, 64), np.float32)
    ref = write(pool, array, seq=1)
    # (wrongly) acknowledged: the producer reuses the slot
    slot = pool.acquire(array.nbytes, "p", 2, live=False, released=1)
    assert slot is not None and slot.offset == ref.offset
    pool.write(slot, array * 2, 2, "p")
    with pytest.raises(Overwritten):
        reader.copy_out(ref, array.shape, array.dtype)


def test_a_slot_rewritten_during_the_copy_is_dropped_not_torn(
    pool_and_reader: tuple[SlotPool, PoolReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, reader = pool_and_reader
    old = np.zeros((256, 256), np.uint16)
    ref = write(pool, old, seq=1)
    rewriting = False

    def then_rewrite(copy: Callable[..., Any]) -> Callable[..., Any]:
        def copy_then_rewrite(*args: Any, **kwargs: Any) -> Any:
            nonlocal rewriting
            result = copy(*args, **kwargs)
            if not rewriting:  # the producer rewrites the slot while the reader copies
                rewriting = True
                slot = pool.acquire(old.nbytes, "p", 2, live=False, released=1)
                assert slot is not None and slot.offset == ref.offset
                pool.write(slot, old + 1, 2, "p")
            return result

        return copy_then_rewrite

    # A mapped pool is copied by numpy, a named one read with preadv.
    monkeypatch.setattr(reader_module.np, "copyto", then_rewrite(np.copyto))
    monkeypatch.setattr(reader_module.os, "preadv", then_rewrite(os.preadv))
    with pytest.raises(Overwritten):
        reader.copy_out(ref, old.shape, old.dtype)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"slot": 16}, SlotError),
        ({"offset": 0}, SlotError),
        ({"offset": 4 * MiB}, SlotError),
        ({"nbytes": 8 * MiB}, SlotError),
        ({"generation": 4}, Overwritten),
    ],
)
def test_references_outside_the_pool_are_refused(
    pool_and_reader: tuple[SlotPool, PoolReader], change: dict[str, int], error: type
) -> None:
    pool, reader = pool_and_reader
    array = np.ones(1000, np.uint8)
    ref = write(pool, array, seq=1)
    fields = {
        "pool": ref.pool,
        "slot": ref.slot,
        "offset": ref.offset,
        "nbytes": ref.nbytes,
        "generation": ref.generation,
        **change,
    }
    with pytest.raises(error):
        reader.copy_out(ShmPixels(**fields), (fields["nbytes"],), np.dtype(np.uint8))


def test_a_full_shm_fails_cleanly_and_leaves_no_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    for kind in KINDS:
        with pytest.raises(SegmentError):
            Segment(8 * MiB, 4, kind)
    assert not our_segments()


@pytest.mark.skipif(not HAS_MEMFD, reason="memfd is Linux only")
def test_the_viewer_maps_only_sealed_memfds_of_the_announced_name_and_size() -> None:
    segment = Segment(MiB, 4, PoolKind.MEMFD)
    try:
        info = segment.info()
        for wrong in (
            PoolInfo(id="psm_other", kind=info.kind, size=info.size, slots=4, fd=info.fd),
            PoolInfo(id=info.id, kind=info.kind, size=2 * MiB, slots=4, fd=info.fd),
            PoolInfo(id=info.id, kind=info.kind, size=MiB, slots=4, fd=9999),
        ):
            with pytest.raises(SegmentError):
                PoolReader(wrong, os.getpid())
        unsealed = os.memfd_create(info.id)
        os.ftruncate(unsealed, MiB)
        try:
            with pytest.raises(SegmentError, match="sealed"):
                PoolReader(
                    PoolInfo(id=info.id, kind=info.kind, size=MiB, slots=4, fd=unsealed),
                    os.getpid(),
                )
        finally:
            os.close(unsealed)
    finally:
        segment.close()


def test_attaching_never_involves_the_resource_tracker() -> None:

    segment = Segment(MiB, 4, PoolKind.NAMED)
    try:
        info = segment.info()
        code = (
            "import os, sys\n"
            "from platestream.backend.shm._reader import PoolReader\n"
            "from platestream.schemas import PoolInfo, PoolKind\n"
            f"r = PoolReader(PoolInfo(id={info.id!r}, kind=PoolKind.NAMED, size={info.size}, "
            f"slots=4), {os.getpid()})\n"
            "r.close()\n"
            "print('multiprocessing.resource_tracker' in sys.modules)\n"
        )
        assert run_python(code) == "False"
        # The owner's mapping is intact after the attaching process exited.
        segment.buffer[PAGE] = 7
        assert segment.buffer[PAGE] == 7
    finally:
        segment.close()
    assert not our_segments()


def _resident_bytes(pool: SlotPool) -> int:
    return os.fstat(pool.segment.fd).st_blocks * 512


@pytest.mark.skipif(not HAS_MEMFD, reason="memfd is Linux only")
def test_a_memfd_pool_reserves_only_the_slots_it_carves() -> None:
    pool = SlotPool(64 * MiB, PoolKind.MEMFD, slots=16)
    try:
        empty = _resident_bytes(pool)
        assert empty < MiB  # the header and slot table, not 64 MiB
        ref = write(pool, np.full(MiB // 2, 7, np.uint16), seq=1)
        assert MiB <= _resident_bytes(pool) < empty + 2 * MiB
        # the same slot, reused
        write(pool, np.full(MiB // 2, 9, np.uint16), seq=2, released=1)
        assert _resident_bytes(pool) < empty + 2 * MiB
        reader = PoolReader(pool.segment.info(), os.getpid())
        try:
            out = reader.copy_out(
                ShmPixels(
                    pool=ref.pool,
                    slot=ref.slot,
                    offset=ref.offset,
                    nbytes=ref.nbytes,
                    generation=ref.generation + 2,
                ),
                (MiB // 2,),
                np.dtype(np.uint16),
            )
            assert (out == 9).all()
        finally:
            reader.close()
    finally:
        pool.close()


@pytest.mark.skipif(not HAS_MEMFD, reason="memfd is Linux only")
def test_a_pool_that_cannot_grow_keeps_its_slots_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pool = SlotPool(16 * MiB, PoolKind.MEMFD, slots=16)
    try:
        first = write(pool, np.ones(MiB, np.uint8), seq=1)
        real = os.posix_fallocate

        def no_space(fd: int, offset: int, length: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "posix_fallocate", no_space)
        # Slot 1 is in flight (seq 1 not acknowledged): a second image needs a new slot.
        assert pool.acquire(MiB, "q", 2, live=False) is None
        assert pool.capacity == pool.segment.reserved - pool.layout.data_start == MiB
        assert pool.acquire(MiB, "q", 2, live=False) is None  # no second attempt, no warning
        warnings = [r for r in caplog.records if "cannot grow" in r.getMessage()]
        assert len(warnings) == 1
        # the reserved slot still serves
        again = write(pool, np.ones(MiB, np.uint8), seq=2, released=1)
        assert again.offset == first.offset
        monkeypatch.setattr(os, "posix_fallocate", real)
    finally:
        pool.close()
