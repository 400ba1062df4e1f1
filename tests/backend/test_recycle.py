"""Receive buffers are reused only once nothing references them."""

from __future__ import annotations

import numpy as np

from platestream.backend.recycle import BufferRecycler

MiB = 1 << 20


def test_a_buffer_is_reused_once_every_array_using_it_is_gone() -> None:
    recycler = BufferRecycler(64 * MiB)
    first = recycler.empty((1024, 1024), np.dtype(np.uint16))
    address = first.__array_interface__["data"][0]
    view = first[::2]  # a view keeps the memory in use...
    del first
    second = recycler.empty((1024, 1024), np.dtype(np.uint16))
    assert second.__array_interface__["data"][0] != address
    held = memoryview(view)  # ...and so does a memoryview of a view
    del view
    third = recycler.empty((1024, 1024), np.dtype(np.uint16))
    assert third.__array_interface__["data"][0] != address
    del held, second, third
    reused_before = recycler.reused
    recycler.empty((1024, 1024), np.dtype(np.uint16))
    assert recycler.reused == reused_before + 1  # nothing uses any buffer any more


def test_reuse_never_hands_out_memory_still_in_use() -> None:
    recycler = BufferRecycler(16 * MiB)
    live = [recycler.empty((512, 1024), np.dtype(np.float32)) for _ in range(4)]
    for index, array in enumerate(live):
        array.fill(index)
    for _ in range(8):
        recycler.empty((512, 1024), np.dtype(np.float32)).fill(-1)
    for index, array in enumerate(live):
        assert (array == index).all()


def test_small_and_huge_arrays_are_not_kept() -> None:
    recycler = BufferRecycler(4 * MiB)
    recycler.empty((16,), np.dtype(np.uint8))
    recycler.empty((8 * MiB,), np.dtype(np.uint8))
    assert recycler.reused == 0
    assert not recycler._buffers
