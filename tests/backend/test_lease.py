"""Zero-copy receiving: leased views of producers' pools, released by use or by collection."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from platestream.backend import NapariStreamingBackend, ReceivedBatch, Receiver
from platestream.backend.shm._lease import LeaseBook, SlotLease
from platestream.backend.shm._pool import Slot, SlotPool
from platestream.backend.shm._reader import PoolReader
from platestream.layering import ImageItem

from ..waiting import wait_until
from .helpers import config, run_python

Make = Callable[..., NapariStreamingBackend]
MakeReceiver = Callable[..., Receiver]


def items(n: int, site0: int = 0) -> list[ImageItem]:
    return [ImageItem({"site": site0 + i}, 0, "raw", (64, 64), "uint16") for i in range(n)]


def arrays(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65535, (64, 64), dtype=np.uint16) for _ in range(n)]


def done_seq(receiver: Receiver, producer: str) -> int:
    return receiver.stats().producers[producer].done_seq


def take_one(receiver: Receiver) -> ReceivedBatch:
    assert receiver.wait(10), "no batch arrived"
    (batch,) = receiver.take()
    return batch


def send_and_take(
    make_backend: Make, receiver: Receiver, n: int, seed: int
) -> tuple[NapariStreamingBackend, list[np.ndarray], ReceivedBatch]:
    """``n`` images sent lossless through shared memory, and the batch they arrived in."""
    backend = make_backend(config(receiver.data_port, delivery="lossless", transport="shm"))
    sent = arrays(n, seed)
    assert backend.save_batch(sent, items(n)).sent == n
    return backend, sent, take_one(receiver)


def test_pixels_are_lent_read_only_and_the_batch_is_done_only_once_released(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(zero_copy=True)
    backend, sent, batch = send_and_take(make_backend, receiver, 3, seed=1)
    for mine, image in zip(sent, batch.images, strict=True):
        assert image.lease is not None and image.intact()
        assert not image.data.flags.writeable and not image.data.flags.owndata
        np.testing.assert_array_equal(image.data, mine)
    (link,) = backend.links().values()
    # Held: the producer may not rewrite these slots, so the batch is not done.
    assert done_seq(receiver, batch.producer) < batch.seq
    assert link.acked_seq < batch.seq
    batch.release()
    batch.release()  # idempotent
    assert link.flush(10), "the release did not reach the producer"
    assert done_seq(receiver, batch.producer) == batch.seq


def test_a_lease_lasts_while_any_view_of_its_pixels_lives(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(zero_copy=True)
    _, (sent,), batch = send_and_take(make_backend, receiver, 1, seed=2)
    producer, seq = batch.producer, batch.seq
    corner = batch.images[0].data[8:16, 8:16]
    del batch
    gc.collect()
    assert done_seq(receiver, producer) < seq  # the slice still reaches the slot
    np.testing.assert_array_equal(corner, sent[8:16, 8:16])
    del corner
    gc.collect()
    wait_until(lambda: done_seq(receiver, producer) == seq, 10, "release by collection")


def test_a_newer_image_of_a_queued_plane_gives_the_older_slot_back(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(zero_copy=True)
    backend = make_backend(config(receiver.data_port, delivery="live", transport="shm"))
    assert backend.connect(timeout_s=10)
    (link,) = backend.links().values()
    assert backend.save(arrays(1, 3)[0], items(1)[0]).sent == 1
    first_seq = link.next_seq - 1
    assert backend.save(arrays(1, 4)[0], items(1)[0]).sent == 1  # the same plane
    # Nothing taken yet: the queue keeps the newer image and releases the older one.
    wait_until(lambda: done_seq(receiver, link.producer_id) == first_seq, 10, "supersede")
    batch = take_one(receiver)
    np.testing.assert_array_equal(batch.images[0].data, arrays(1, 4)[0])
    batch.release()
    assert link.flush(10)


def test_leased_pixels_stay_readable_after_their_producer_left(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(zero_copy=True)
    backend, sent, batch = send_and_take(make_backend, receiver, 2, seed=5)
    backend.close()  # detaches: the receiver unmaps the pool as far as it can
    wait_until(lambda: receiver.stats().pools == 0, 10, "the pool released")
    for mine, image in zip(sent, batch.images, strict=True):
        np.testing.assert_array_equal(image.data, mine)
    batch.release()  # a forgotten producer: nothing to do
    _, again_sent, again = send_and_take(make_backend, receiver, 2, seed=6)
    np.testing.assert_array_equal(again.images[1].data, again_sent[1])
    again.release()


@contextmanager
def pool_and_reader(slots: int) -> Iterator[tuple[SlotPool, PoolReader]]:
    pool = SlotPool(1 << 20, slots=slots)
    reader = PoolReader(pool.segment.info(), os.getpid())
    pool.segment.unlink()
    try:
        yield pool, reader
    finally:
        reader.close()
        pool.close()


def lend_one(
    pool: SlotPool, reader: PoolReader, book: LeaseBook, array: np.ndarray, producer: str, seq: int
) -> tuple[SlotLease, np.ndarray, Slot]:
    slot = pool.acquire(array.nbytes, "p", seq, live=True)
    assert slot is not None
    ref = pool.write(slot, array, seq, "p")
    view, entry = reader.view(ref, array.shape, array.dtype)
    return book.lend(producer, seq, view, entry, ref.generation), view, slot


def test_a_rewritten_slot_is_seen_by_its_lease() -> None:
    wakes: list[int] = []
    book = LeaseBook(lambda: wakes.append(1))
    with pool_and_reader(slots=1) as (pool, reader):  # full after one image
        old = np.zeros((32, 32), np.uint16)
        lease, view, slot = lend_one(pool, reader, book, old, "producer", 1)
        assert lease.intact() and book.oldest("producer") == 1 and book.on_loan() == 1
        # Live mode, pool full: a newer image of the plane takes the slot it still lends.
        newer = pool.acquire(old.nbytes, "p", 2, live=True)
        assert newer is not None and newer.offset == slot.offset
        pool.write(newer, old + 7, 2, "p")
        assert not lease.intact()  # whatever was copied from ``view`` must be discarded
        lease.release()
        assert book.oldest("producer") is None and book.changed() == {"producer"}
        assert wakes == [1]
        lease.release()
        assert wakes == [1] and book.changed() == set()
        del view, lease


def test_forgetting_a_producer_frees_its_batches() -> None:
    book = LeaseBook(lambda: None)
    with pool_and_reader(slots=2) as (pool, reader):
        array = np.ones((16, 16), np.uint8)
        lease, view, _ = lend_one(pool, reader, book, array, "gone", 3)
        book.forget("gone")
        assert book.oldest("gone") is None
        lease.release()  # after the producer was forgotten: ignored, no error
        assert book.changed() == set()
        reader.close()  # a view is still lent: the mapping stays until it goes
        np.testing.assert_array_equal(view, array)
        del view, lease


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_buffers_are_reused_not_faulted_in_again() -> None:
    """After keep_large_buffers, a 32 MiB buffer freed and allocated again costs no page
    faults; without it, every allocation faults all its pages in."""
    script = """
import resource, sys
from platestream.backend.shm._buffers import keep_large_buffers
if sys.argv[1] == "keep":
    assert keep_large_buffers()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
buffer = bytearray(32 << 20); del buffer  # the first one is faulted in either way
before = faults()
for _ in range(5):
    buffer = bytearray(32 << 20)  # zero-filled: every page is touched
    del buffer
print(faults() - before)
"""
    pages = (32 << 20) // os.sysconf("SC_PAGE_SIZE")
    counts = {}
    for mode in ("keep", "default"):
        counts[mode] = int(run_python(script, mode, timeout_s=60))
    assert counts["default"] >= 4 * pages, counts  # fresh mmaps: faulted every time
    assert counts["keep"] < pages // 2, counts  # reused heap memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_a_bounded_heap_gives_freed_planes_back() -> None:
    """A viewer within a memory budget: 400 MiB of 2 MiB planes, freed between small
    allocations that stay, go back to the system; the warm heap keeps some of them."""
    script = """
import sys
from platestream.backend.shm._buffers import bound_heap, keep_large_buffers, return_free_memory
assert (bound_heap if sys.argv[1] == "bounded" else keep_large_buffers)()
def anon_kib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("RssAnon:"))
before = anon_kib()
planes, kept = [], []
for _ in range(200):
    planes.append(bytearray(2 << 20))  # zero-filled: every page is touched
    kept.append(bytearray(4096))  # blocks of the heap in between, still in use after
del planes
if sys.argv[1] == "bounded":
    return_free_memory()
print(anon_kib() - before)
"""
    grown = {mode: int(run_python(script, mode, timeout_s=60)) for mode in ("bounded", "warm")}
    assert grown["bounded"] < 4 << 10, grown  # KiB: less than two planes' worth stays
    assert grown["warm"] > 8 << 10, grown  # the warm heap kept some for reuse


def _resident_kib(address: int) -> int:
    """This process's resident KiB of the mapping that holds ``address`` (smaps)."""
    with open("/proc/self/smaps") as smaps:
        inside = False
        for line in smaps:
            head = line.split()
            if "-" in head[0] and len(head) >= 5:
                low, high = (int(x, 16) for x in head[0].split("-"))
                inside = low <= address < high
            elif inside and head[0] == "Rss:":
                return int(head[1])
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.parametrize("zero_copy", [True, False])
def test_a_slot_the_viewer_is_done_with_leaves_its_memory(
    make_backend: Make, make_receiver: MakeReceiver, zero_copy: bool
) -> None:
    """Read pages of a producer's pool count in the viewer's RSS until it lets them go."""
    receiver = make_receiver(zero_copy=zero_copy)
    backend = make_backend(config(receiver.data_port, delivery="lossless", transport="shm"))
    big = np.random.default_rng(3).integers(0, 4096, (1024, 1024), dtype=np.uint16)
    assert backend.save_batch([big], items(1)).sent == 1
    batch = take_one(receiver)
    (reader,) = receiver._pools.readers.values()
    mapping = np.frombuffer(reader._buffer, np.uint8, count=1).ctypes.data  # type: ignore[arg-type]
    if zero_copy:  # the viewer reads the lent pages: they are in its memory
        np.testing.assert_array_equal(batch.images[0].data, big)
        assert _resident_kib(mapping) >= big.nbytes // 1024
        batch.release()
    else:  # copied out at once, the slot's pages let go right after
        np.testing.assert_array_equal(batch.images[0].data, big)
    assert _resident_kib(mapping) < 64  # the table and header, not the 2 MiB of pixels
