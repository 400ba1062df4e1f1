"""Receive buffers are reused only once nothing references them."""

from __future__ import annotations

import numpy as np

from platestream.backend.shm._buffers import BufferRecycler

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


def test_a_buffer_zeromq_still_sends_from_is_not_reused() -> None:
    import zmq

    from ..waiting import wait_until

    recycler = BufferRecycler(64 * MiB)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    try:
        sender.bind("inproc://recycle")
        receiver.connect("inproc://recycle")
        buffer = recycler.empty((MiB,), np.dtype(np.uint8))
        buffer.fill(7)
        sender.send(buffer.data, copy=False)  # queued in the pipe, not yet received
        del buffer
        other = recycler.empty((MiB,), np.dtype(np.uint8))
        other.fill(9)
        assert recycler.reused == 0
        assert (np.frombuffer(receiver.recv(), np.uint8) == 7).all()
        del other
        # pyzmq lets go of a sent buffer asynchronously, once libzmq is done with it.
        wait_until(
            lambda: recycler.empty((MiB,), np.dtype(np.uint8)) is not None and recycler.reused > 0,
            10,
            "the buffer to come back",
        )
    finally:
        sender.close(0)
        receiver.close(0)
        context.term()


def test_prefaulted_copies_are_exact_fresh_and_the_reserve_stays_bounded() -> None:
    """A copy equals its source (any dtype, strided or not), owns new memory, and the
    helper's reserve follows the size last asked for, never over its bounds."""
    from platestream.backend.shm import _buffers, prefaulted_copy

    rng = np.random.default_rng(1)
    sources = [
        rng.integers(0, 60000, (512, 512), dtype=np.uint16),  # 512 KiB: from the reserve
        rng.random((300, 400)),  # float64, 937.5 KiB
        rng.integers(0, 255, (2048, 2048), dtype=np.uint8)[::2, ::3],  # strided, 683 KiB
        np.arange(12, dtype=np.int32).reshape(3, 4),  # small: a plain copy
    ]
    for source in sources:
        copies = [prefaulted_copy(source) for _ in range(3)]
        for copy in copies:
            assert copy.flags.c_contiguous and copy.dtype == source.dtype
            np.testing.assert_array_equal(copy, source)
            assert not np.shares_memory(copy, source)
        assert not np.shares_memory(copies[0], copies[1])
    reserve = _buffers._RESERVE
    with reserve._changed:
        held = list(reserve._ready)
        assert reserve._nbytes == sources[2].nbytes  # the last large size asked for
    assert len(held) <= _buffers.RESERVE_PLANES
    assert sum(buffer.nbytes for buffer in held) <= _buffers.RESERVE_BYTES
    assert all(buffer.nbytes == sources[2].nbytes for buffer in held)
