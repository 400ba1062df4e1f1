"""Receive buffers of a receiving process: reused once unreferenced, and kept warm.

**Reuse** (``BufferRecycler``).
Receive buffers, reused once nothing references them any more.

Copying a frame out of shared memory into freshly allocated memory costs as much again in
page faults and kernel zeroing as the copy itself (large allocations come straight from
``mmap``). So the receiver copies into buffers it allocated before, once every array that
used such a buffer is gone.

"Gone" is read from the buffer's reference count: every array handed out - and every
view, slice or memoryview of it, since numpy points them all at the array that owns the
memory - holds a reference to the owning buffer. When only the recycler's own references
remain, no Python object can reach that memory, and no one can create a new view of it.
(Memory reached only through raw pointers, e.g. ``array.ctypes.data``, is not tracked; it
never is by numpy either.) CPython only; elsewhere buffers are simply not reused.

**Warm heap** (``keep_large_buffers``).
Keeping large receive buffers warm: glibc's malloc thresholds for a viewer process.

An inline frame arrives in memory ZeroMQ's I/O thread allocates for the whole message.
glibc serves allocations at or above its mmap threshold with a fresh ``mmap`` - every
page faulted in and zeroed by the kernel, then unmapped on free - and the threshold it
adapts to never exceeds 32 MiB. A 32 MiB frame therefore costs its own size in page faults
on every message: the inline path ran at 1.4 GB/s instead of 2.2.

``keep_large_buffers`` raises the mmap threshold and the trim threshold for the whole
process, so such buffers come from the heap and their pages are reused, message after
message. The price: up to ``trim_bytes`` of freed memory stays with each malloc arena
instead of going back to the system at once, so it also limits the process to two arenas
(threads share them) to bound that. Only our own receiving processes call it (the viewer
and ``platestream.backend.bare_receiver``); a library never changes its host's allocator.

**Prefaulted copies** (``prefaulted_copy``).
A plane the viewer keeps needs memory no one used before: the kernel faults it in page by
page as the copy first touches it (512 faults for a 2 MiB plane), and with the viewer's
threads mapping and unmapping pools meanwhile each fault costs more. One
``madvise(MADV_POPULATE_WRITE)`` call (Linux 5.14) faults a whole buffer in: 0.86 -> 0.39
ms per fresh 2 MiB plane here; elsewhere the copy simply faults. A helper thread does it
ahead, for the next few planes of the size last copied, so the copying thread only copies:
in the viewer, faulting planes in had been half of the GUI thread's time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
import threading
from collections import deque

import numpy as np

_REUSABLE = sys.implementation.name == "cpython"
# References to a buffer while ``_free`` inspects it: the deque, the local variable, and
# the argument of getrefcount. Any more belong to arrays handed out (a test checks this).
_OUR_REFERENCES = 3


class BufferRecycler:
    """Hands out arrays; keeps at most ``max_bytes`` of buffers to hand out again."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes if _REUSABLE else 0
        self._buffers: deque[np.ndarray] = deque()
        self._bytes = 0
        self.reused = 0

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised C-ordered array, in warm memory when a buffer is free."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < (1 << 20) or nbytes > self.max_bytes:
            return np.empty(shape, dtype)  # small ones are cheap; huge ones are not kept
        owner = self._free(nbytes)
        if owner is None:
            owner = np.empty(nbytes, np.uint8)
            self._keep(owner)
        else:
            self.reused += 1
        return owner.view(dtype).reshape(shape)

    def _free(self, nbytes: int) -> np.ndarray | None:
        # Most recently used first: its lines may still be in cache, which makes the copy
        # into it markedly faster. An index loop: enumerate() would hold one more reference.
        for index in range(len(self._buffers) - 1, -1, -1):
            owner = self._buffers[index]
            if owner.nbytes == nbytes and sys.getrefcount(owner) <= _OUR_REFERENCES:
                del self._buffers[index]
                self._buffers.append(owner)  # most recently used last
                return owner
        return None

    def _keep(self, owner: np.ndarray) -> None:
        self._buffers.append(owner)
        self._bytes += owner.nbytes
        while self._bytes > self.max_bytes and self._buffers:
            # Forget the least recently used; arrays still using it keep it alive.
            self._bytes -= self._buffers.popleft().nbytes


log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 64 << 20  # frames up to this size come from the heap
TRIM_THRESHOLD_BYTES = 128 << 20  # freed memory kept for reuse, at most (per arena)
ARENA_MAX = 2  # malloc arenas: every thread's freed memory is kept by one of two
# A viewer within a memory budget: planes of 1 MiB and more are mapped for themselves and
# unmapped when freed (the threshold fixed: glibc stops raising it), and little freed
# memory stays with the heap.
BOUNDED_MMAP_BYTES = 1 << 20
BOUNDED_TRIM_BYTES = 16 << 20


MADV_POPULATE_WRITE = 23  # Linux 5.14: fault a range in, writable, in one call
PREFAULT_BYTES = 256 << 10  # smaller copies gain nothing from it
RESERVE_PLANES = 8  # fresh planes kept faulted in ahead, at most
RESERVE_BYTES = 64 << 20  # and at most this many bytes of them


def _fresh(nbytes: int) -> np.ndarray:
    """``nbytes`` of new memory (uint8), faulted in by one call where the kernel can."""
    buffer = np.empty(nbytes, np.uint8)
    libc = _libc() if _Reserve.populate_works else None
    if libc is not None:
        page = 4096
        start = -(-buffer.ctypes.data // page) * page
        end = (buffer.ctypes.data + nbytes) // page * page
        if end > start and libc.madvise(start, end - start, MADV_POPULATE_WRITE) != 0:
            _Reserve.populate_works = False  # an older kernel (EINVAL): plain faults
            log.debug("MADV_POPULATE_WRITE is not available; copies fault page by page")
    return buffer


class _Reserve:
    """Fresh buffers of the size last asked for, faulted in ahead by a helper thread, so
    the thread that copies (the viewer's GUI thread) spends its time copying. Holds at
    most ``RESERVE_PLANES`` buffers and ``RESERVE_BYTES``; the thread starts on first use
    and sleeps on a condition while the reserve is full (no polling)."""

    populate_works = sys.platform.startswith("linux")

    def __init__(self) -> None:
        self._ready: deque[np.ndarray] = deque()
        self._nbytes = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def take(self, nbytes: int) -> np.ndarray:
        with self._changed:
            if nbytes != self._nbytes:
                self._nbytes = nbytes
                self._ready.clear()
            buffer = self._ready.popleft() if self._ready else None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._fill, name="platestream-prefault", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        return buffer if buffer is not None else _fresh(nbytes)

    def _wanted(self) -> int:
        return min(RESERVE_PLANES, RESERVE_BYTES // max(1, self._nbytes))

    def _fill(self) -> None:
        while True:
            with self._changed:
                while len(self._ready) >= self._wanted():
                    self._changed.wait()
                nbytes = self._nbytes
            buffer = _fresh(nbytes)  # outside the lock; madvise runs without the GIL
            with self._changed:
                if nbytes == self._nbytes:
                    self._ready.append(buffer)


_RESERVE = _Reserve()


def prefaulted_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``array`` in new memory that was faulted in ahead (see the
    module docs); small arrays are copied plainly."""
    array = np.asarray(array)
    if array.nbytes < PREFAULT_BYTES:
        return np.array(array, copy=True, order="C")
    out = _RESERVE.take(array.nbytes).view(array.dtype).reshape(array.shape)
    np.copyto(out, array)
    return out


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - musl has no mallopt
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc


def keep_large_buffers(
    mmap_bytes: int = MMAP_THRESHOLD_BYTES, trim_bytes: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Set glibc's thresholds; False where the C library is not glibc (nothing done)."""
    libc = _libc()
    if libc is None:
        return False
    # Arenas: glibc gives busy threads arenas of their own (up to 8 per core), and each
    # keeps up to ``trim_bytes`` freed: a viewer's receive, display and store-writer threads
    # held 1.6 GB over a 1 GB plane budget on a 29 GB plate. Two arenas bound that.
    done = (
        bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_bytes))
        and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_bytes))
        and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    )
    if not done:
        log.debug("mallopt refused the thresholds; large buffers stay mmap-backed")
    return done


def bound_heap() -> bool:
    """The allocator of a process that holds to a memory budget (a viewer with a run
    store): large buffers are returned to the system as soon as they are freed."""
    return keep_large_buffers(BOUNDED_MMAP_BYTES, BOUNDED_TRIM_BYTES)


def return_free_memory() -> bool:
    """Give the pages of freed heap memory back to the system (``malloc_trim``), also
    those between blocks still in use; True if any were returned."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))
