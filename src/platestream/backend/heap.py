"""Keeping large receive buffers warm: glibc's malloc thresholds for a viewer process.

An inline frame arrives in memory ZeroMQ's I/O thread allocates for the whole message.
glibc serves allocations at or above its mmap threshold with a fresh ``mmap`` - every
page faulted in and zeroed by the kernel, then unmapped on free - and the threshold it
adapts to never exceeds 32 MiB. A 32 MiB frame therefore costs its own size in page faults
on every message: the inline path ran at 1.4 GB/s instead of 2.2.

``keep_large_buffers`` raises the mmap threshold and the trim threshold for the whole
process, so such buffers come from the heap and their pages are reused, message after
message. The price: up to ``trim_bytes`` of freed memory stays with the process instead of
going back to the system at once. Only our own receiving processes call it (the viewer
and ``platestream.backend.serve``); a library never changes its host's allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 64 << 20  # frames up to this size come from the heap
TRIM_THRESHOLD_BYTES = 256 << 20  # freed memory kept for reuse, at most


def keep_large_buffers(
    mmap_bytes: int = MMAP_THRESHOLD_BYTES, trim_bytes: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Raise glibc's thresholds; False where the C library is not glibc (nothing done)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl has no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, mmap_bytes)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_bytes)
    )
    if not done:
        log.debug("mallopt refused the thresholds; large buffers stay mmap-backed")
    return done
