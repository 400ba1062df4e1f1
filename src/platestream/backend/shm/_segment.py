"""Shared-memory segments that cannot outlive their owner, and the pool layout inside them.

Linux (default): the pool is a ``memfd`` - anonymous memory with no name, so nothing ever
appears in ``/dev/shm``. The viewer maps it by opening ``/proc/<producer pid>/fd/<fd>``;
the kernel frees it when the last process holding it exits, however it exits (``kill -9``
included). The memfd is sealed against shrinking, so the viewer can never take a SIGBUS.

Elsewhere (or when forced, or when the viewer cannot open the memfd): a POSIX ``shm_open``
name. The viewer unlinks the name the moment it has opened it, the producer unlinks it
after the viewer's answer (or at once if there is none), so a name exists only for the few
milliseconds of the attach. A named pool cannot be sealed, so the viewer never maps it: it
reads it with ``pread`` (``open_named``), and a pool its owner shrank gives a short read,
never a SIGBUS.

Memory is reserved with ``posix_fallocate`` before any page of it is touched - a full
``/dev/shm`` fails cleanly there with an OSError, never later as a SIGBUS - and pre-faulted
so the copies into it never take page faults. A memfd is reserved as it is used: the
header and slot table at once, each new slot's pages when the slot is carved (``reserve``),
so a producer that sends 1 MiB images pays for the megabytes it uses, not for the whole
``shm_pool_mb``; a slot is carved once and reused, so the hot path still never faults. A
named pool lives on ``/dev/shm``, which may be a size-limited tmpfs where reading a hole
could raise SIGBUS in the viewer, so it is reserved and faulted in whole, up front.
``multiprocessing.shared_memory`` is not used: on Python 3.11/3.12 attaching registers the
segment with the resource tracker, which unlinks the owner's segment when the attaching
process exits.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from typing import Final

import numpy as np

from platestream.schemas import PoolInfo, PoolKind

PAGE: Final = mmap.PAGESIZE
MAGIC: Final = 0x3130_4C4F_4F50_5350  # b"PSPOOL01" little-endian
HEADER_BYTES: Final = 64
SLOT_WORDS: Final = 4  # generation, offset, nbytes, seq (uint64 each)
GENERATION, OFFSET, NBYTES, SEQ = range(SLOT_WORDS)
NAME_PREFIX: Final = "psm_"
MADV_POPULATE_WRITE: Final = 23  # Linux 5.14+; not exported by Python's mmap module
HAS_MEMFD: Final = sys.platform.startswith("linux") and hasattr(os, "memfd_create")


class SegmentError(OSError):
    """A segment could not be created or opened (no space, no permission, gone)."""


def round_up(value: int, step: int = PAGE) -> int:
    return -(-value // step) * step


def name_prefix() -> str:
    """``psm_``, then ``$PLATESTREAM_SHM_TAG`` and ``_`` when that is set (1-8 letters or
    digits): a test session tags its segments, so its leak check sees only its own."""
    tag = os.environ.get("PLATESTREAM_SHM_TAG", "")
    if tag and len(tag) <= 8 and tag.isascii() and tag.isalnum():
        return f"{NAME_PREFIX}{tag}_"
    return NAME_PREFIX


def new_pool_id() -> str:
    """The prefix + 12 hex digits: unique, and short enough for macOS (31 characters)."""
    return f"{name_prefix()}{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Layout:
    """Where things are in a pool: header, slot table, then page-aligned pixel data."""

    size: int
    slots: int

    @property
    def data_start(self) -> int:
        return round_up(HEADER_BYTES + self.slots * SLOT_WORDS * 8)

    @property
    def data_bytes(self) -> int:
        return self.size - self.data_start

    def table(self, buffer: mmap.mmap) -> np.ndarray:
        """The slot table as a (slots, 4) uint64 array viewing the mapping."""
        return np.ndarray((self.slots, SLOT_WORDS), dtype="<u8", buffer=buffer, offset=HEADER_BYTES)

    def header(self, buffer: mmap.mmap) -> np.ndarray:
        return np.ndarray((4,), dtype="<u8", buffer=buffer, offset=0)


def _preallocate(fd: int, start: int, end: int) -> None:
    """Reserve the pages of [start, end), so a full /dev/shm is an OSError here and never
    a SIGBUS later."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, start, end - start)
        return
    # No posix_fallocate (macOS): write each page through the file, which fails cleanly.
    zeros = bytes(PAGE)
    for offset in range(start, end, PAGE):
        if os.pwrite(fd, zeros, offset) != PAGE:
            raise OSError(errno.ENOSPC, "short write while reserving shared memory")


def _map(fd: int, size: int, writable: bool, populate: bool) -> mmap.mmap:
    flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    return mmap.mmap(fd, size, flags=flags, prot=prot)


def _prefault(buffer: mmap.mmap, start: int, end: int) -> None:
    """Map the (reserved) pages of [start, end) for writing now, not on first copy."""
    try:
        buffer.madvise(MADV_POPULATE_WRITE, start, end - start)
    except (OSError, AttributeError, ValueError):  # an older kernel: touch every page
        pages = np.ndarray(((end - start) // PAGE,), np.uint8, buffer, start, (PAGE,))
        pages[:] = 0  # the pages are fresh zeros and unused: nothing is overwritten
        del pages


def _shm_open(name: str, flags: int, mode: int = 0o600) -> int:
    import _posixshmem  # type: ignore[import-not-found]  # multiprocessing's primitive, minus its tracker

    fd: int = _posixshmem.shm_open("/" + name, flags, mode=mode)
    return fd


def shm_unlink(name: str) -> None:
    """Remove a named segment; a name already gone is fine."""
    import _posixshmem

    with contextlib.suppress(FileNotFoundError):
        _posixshmem.shm_unlink("/" + name)


class Segment:
    """The producer's end: creates the memory, keeps the only long-lived reference."""

    def __init__(self, size: int, slots: int, kind: PoolKind | None = None) -> None:
        self.kind = kind or (PoolKind.MEMFD if HAS_MEMFD else PoolKind.NAMED)
        self.layout = Layout(round_up(size), slots)
        if self.layout.data_bytes < PAGE:
            raise ValueError(f"pool of {size} bytes is too small for {slots} slots")
        self.id = new_pool_id()
        self.named = self.kind is PoolKind.NAMED  # True while the name may still exist
        # Reserved and faulted in up to here; a memfd grows by ``reserve``, a named pool
        # is whole from the start (see the module docstring).
        self.lazy = self.kind is PoolKind.MEMFD
        self.reserved = self.layout.data_start if self.lazy else self.layout.size
        self.fd = self._create()
        try:
            self.buffer = _map(self.fd, self.layout.size, writable=True, populate=not self.lazy)
        except OSError as err:
            self.close()
            raise SegmentError(err.errno, f"cannot map shared memory: {err}") from None
        header = self.layout.header(self.buffer)
        header[:] = (MAGIC, self.layout.size, self.layout.slots, 0)
        del header  # no view may outlive close()

    def _create(self) -> int:
        if self.kind is PoolKind.MEMFD:
            fd = os.memfd_create(self.id, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        else:
            fd = _shm_open(self.id, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            os.ftruncate(fd, self.layout.size)
            _preallocate(fd, 0, self.reserved)
            if self.kind is PoolKind.MEMFD:
                import fcntl

                seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        except OSError as err:
            os.close(fd)
            if self.kind is PoolKind.NAMED:
                shm_unlink(self.id)
            message = f"cannot reserve {self.layout.size} bytes: {err}"
            raise SegmentError(err.errno, message) from None
        return fd

    def reserve(self, end: int) -> None:
        """Make [0, end) reserved and faulted in; raises SegmentError when memory is short
        (the pool then keeps what it has)."""
        end = min(round_up(end), self.layout.size)
        if end <= self.reserved:
            return
        try:
            _preallocate(self.fd, self.reserved, end)
        except OSError as err:
            raise SegmentError(
                err.errno, f"cannot reserve {end - self.reserved} more bytes: {err}"
            ) from None
        _prefault(self.buffer, self.reserved, end)
        self.reserved = end

    def info(self) -> PoolInfo:
        fd = self.fd if self.kind is PoolKind.MEMFD else -1
        return PoolInfo(
            id=self.id, kind=self.kind, size=self.layout.size, slots=self.layout.slots, fd=fd
        )

    def unlink(self) -> None:
        """Drop the name (named pools): the viewer has it mapped, or will never map it."""
        if self.named:
            shm_unlink(self.id)
            self.named = False

    def close(self) -> None:
        self.unlink()
        buffer = getattr(self, "buffer", None)
        if buffer is not None and not buffer.closed:
            buffer.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_readonly(info: PoolInfo, pid: int) -> mmap.mmap:
    """The viewer's end of a memfd pool: mapped read-only once checked to be what it claims.

    The memfd is reached through /proc/<pid>/fd/<fd>, which a client chooses: it must be a
    regular file before it is opened, is opened without blocking (a FIFO there would
    otherwise hang the receive thread), and must then be a memfd of this pool's name and
    size, sealed against shrinking (so a mapping of it can never raise SIGBUS).
    """
    if info.kind is not PoolKind.MEMFD:
        raise SegmentError(errno.EINVAL, f"pool {info.id} is {info.kind.value}: read it by its fd")
    fd = _open_regular(f"/proc/{pid}/fd/{info.fd}", info)
    try:
        _check_opened(fd, info)
        # A memfd is reserved as the producer carves slots: populating all of it here would
        # allocate what the producer never uses. Each page faults in once, on first read.
        return _map(fd, info.size, writable=False, populate=False)
    except OSError as err:
        raise SegmentError(err.errno, f"cannot map pool {info.id}: {err}") from None
    finally:
        os.close(fd)


def open_named(info: PoolInfo) -> int:
    """The viewer's end of a named pool: a descriptor, never a mapping, and the name unlinked.

    A named pool cannot be sealed: its owner may truncate it at any time, and a mapping
    read past the new end raises SIGBUS, which would kill the viewer. So the viewer reads
    it with ``pread`` (a short read then, counted as a drop). Opened without blocking and
    refused unless it is a regular file of the pool's size.
    """
    try:
        try:
            fd = _shm_open(info.id, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            raise SegmentError(err.errno, f"cannot open pool {info.id}: {err}") from None
        try:
            _check_opened(fd, info)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        shm_unlink(info.id)


def _open_regular(path: str, info: PoolInfo) -> int:
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise SegmentError(errno.EINVAL, f"pool {info.id}: {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except SegmentError:
        raise
    except OSError as err:
        raise SegmentError(err.errno, f"cannot open pool {info.id}: {err}") from None
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise SegmentError(errno.EINVAL, f"pool {info.id}: {path} changed while it was opened")
    return fd


def _check_opened(fd: int, info: PoolInfo) -> None:
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        raise SegmentError(errno.EINVAL, f"pool {info.id} is not a regular file")
    if opened.st_size != info.size:
        raise SegmentError(errno.EINVAL, f"pool {info.id} is not {info.size} bytes")
    if info.kind is not PoolKind.MEMFD:
        return
    import fcntl

    target = os.readlink(f"/proc/self/fd/{fd}")
    if not target.startswith(f"/memfd:{info.id} "):
        raise SegmentError(errno.EINVAL, f"descriptor is {target!r}, not memfd {info.id}")
    if not fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SHRINK:
        raise SegmentError(errno.EINVAL, f"memfd {info.id} is not sealed against shrinking")
