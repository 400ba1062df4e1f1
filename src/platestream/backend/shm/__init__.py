"""Shared memory: the producer's pools and the viewer's reading of them.

* ``Segment`` (``_segment``): one shared-memory segment - a memfd on Linux, else a named
  ``/dev/shm`` object - with its slot table, reserved and pre-faulted as it grows.
* ``SlotPool`` (``_pool``): the producer's reused slots over a segment, written as seqlocks.
* ``PoolReader`` (``_reader``): the viewer's read-only mapping of a producer's pool; copies
  out or lends views, and drops what was rewritten meanwhile.
* ``LeaseBook``/``SlotLease`` (``_lease``): views of slots lent to the display until it
  releases them (zero-copy receiving).
* ``copy_into`` (``_copying``): frames of 4 MiB and more copied on several threads.
* ``BufferRecycler``, ``keep_large_buffers``, ``bound_heap``, ``return_free_memory``,
  ``prefaulted_copy`` (``_buffers``):
  receive buffers kept warm, or memory given back within a budget.
"""

from ._buffers import (
    BufferRecycler,
    bound_heap,
    keep_large_buffers,
    prefaulted_copy,
    return_free_memory,
)
from ._copying import copy_into
from ._lease import LeaseBook, SlotLease
from ._pool import Slot, SlotPool
from ._reader import Overwritten, PoolReader, SlotError
from ._segment import HAS_MEMFD, PAGE, Segment, SegmentError, name_prefix, shm_unlink

__all__ = [
    "HAS_MEMFD",
    "PAGE",
    "BufferRecycler",
    "LeaseBook",
    "Overwritten",
    "PoolReader",
    "Segment",
    "SegmentError",
    "Slot",
    "SlotError",
    "SlotLease",
    "SlotPool",
    "bound_heap",
    "copy_into",
    "keep_large_buffers",
    "name_prefix",
    "prefaulted_copy",
    "return_free_memory",
    "shm_unlink",
]
