"""Turning a validated batch into a ReceivedBatch: checks, copy-out, counting, pools.

Shared-memory pixels are copied out at once, or with ``zero_copy`` lent as read-only views
of the producer's slots (``lease``); a batch is done - reported to its producer, which may
then rewrite its slots - once it is taken in and none of its images is still on loan.

Message-level faults (frames that do not match the header, a display config the config
classes reject) drop the batch; image-level faults (an unknown pool or slot, a slot
rewritten during the copy) drop that image. Either way the batch counts as done, so its
producer can reuse its slots.

Pools are mapped per producer and released when it detaches or its process exits - seen
at once through a pidfd on Linux, else by checking the pid every second.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq

from platestream.schemas import (
    Batch,
    DropReason,
    InlinePixels,
    PoolInfo,
    ShmPixels,
    WireError,
    WireItem,
    display_from_wire,
)

from .display_queue import ReceivedBatch, ReceivedImage
from .lease import LeaseBook
from .reader import Overwritten, PoolReader, SlotError
from .recycle import BufferRecycler
from .shm import SegmentError

if TYPE_CHECKING:
    from .receiver import Receiver

log = logging.getLogger(__name__)
LIVENESS_CHECK_S = 1.0


_DTYPES: dict[Any, np.dtype[Any]] = {}


def _dtype(item: WireItem) -> np.dtype[Any]:
    dtype = _DTYPES.get(item.dtype)
    if dtype is None:
        dtype = _DTYPES[item.dtype] = np.dtype(item.dtype.value).newbyteorder("<")
    return dtype


def _expected_bytes(item: WireItem) -> int:
    return math.prod(item.shape) * _dtype(item).itemsize


class Ingest:
    """Owned by the receive thread."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.counters = receiver.counters
        self.pools: dict[str, PoolReader] = {}  # by producer id
        self._pidfds: dict[int, str] = {}  # pidfd -> producer id
        self._last_liveness = time.monotonic()
        self._display_cache: tuple[Any, Any] = (None, None)
        self.recycler = BufferRecycler(receiver.options.recycle_bytes)
        self.zero_copy = receiver.options.zero_copy
        self.leases = LeaseBook(receiver._wake)

    # -------------------------------------------------------------- batches

    def batch(self, batch: Batch, frames: list[zmq.Frame]) -> ReceivedBatch | None:
        """Copy a batch out; None if nothing of it survives. Counts everything."""
        self._note_sequence(batch)
        try:
            display = self._display(batch.display)
            self._check_frames(batch, frames)
        except WireError as err:
            self.counters.drop(err.reason, 1, batch.producer)
            return None
        images = []
        for item in batch.items:
            image = self._image(batch, item, frames)
            if image is not None:
                images.append(image)
        nbytes = sum(image.data.nbytes for image in images)
        self.counters.received(batch.producer, len(images), nbytes)
        if not images:
            return None
        return ReceivedBatch(
            producer=batch.producer,
            seq=batch.seq,
            delivery=batch.delivery,
            display=display,
            images=tuple(images),
            saved_at=batch.saved_at,
            sent_at=batch.sent_at,
            received_at=time.time(),
        )

    def _note_sequence(self, batch: Batch) -> None:
        with self.counters.lock:
            producer = self.counters.producer(batch.producer)
            gap = batch.seq - producer.last_seq - 1 if producer.last_seq else 0
            producer.last_seq = batch.seq
        if gap > 0:  # batches that never arrived (the viewer restarted, a queue overflowed)
            self.counters.drop(DropReason.LOST, gap, batch.producer)

    def update_done(self, producer_id: str) -> None:
        """Every batch taken in is done, up to the oldest with an image still on loan."""
        oldest = self.leases.oldest(producer_id)
        with self.counters.lock:
            producer = self.counters.producer(producer_id)
            done = producer.last_seq if oldest is None else oldest - 1
            producer.done_seq = max(producer.done_seq, done)

    def _display(self, values: Any) -> Any:
        cached_values, cached_config = self._display_cache
        if values == cached_values:
            return cached_config  # producers send the same config batch after batch
        try:
            config = display_from_wire(values)
        except (ValueError, TypeError) as err:
            raise WireError(DropReason.BAD_SCHEMA, f"display: {err}"[:400]) from None
        self._display_cache = (values, config)
        return config

    def _check_frames(self, batch: Batch, frames: list[zmq.Frame]) -> None:
        used: set[int] = set()
        for item in batch.items:
            pixels = item.pixels
            if _expected_bytes(item) != pixels.nbytes:
                raise WireError(
                    DropReason.TRUNCATED,
                    f"{item.shape} {item.dtype.value} != {pixels.nbytes} bytes",
                )
            if isinstance(pixels, InlinePixels):
                index = pixels.frame - 1
                if index in used or index >= len(frames) or len(frames[index]) != pixels.nbytes:
                    raise WireError(DropReason.TRUNCATED, f"frame {pixels.frame} missing or wrong")
                used.add(index)
        if len(used) != len(frames):
            raise WireError(DropReason.TRUNCATED, f"{len(frames) - len(used)} unreferenced frames")

    def _image(self, batch: Batch, item: WireItem, frames: list[zmq.Frame]) -> ReceivedImage | None:
        pixels = item.pixels
        producer = batch.producer
        try:
            if isinstance(pixels, ShmPixels) and self.zero_copy:
                view, entry = self._pool(producer, pixels).view(pixels, item.shape, _dtype(item))
                lease = self.leases.lend(producer, batch.seq, view, entry, pixels.generation)
                return ReceivedImage(item.image_item(), view, lease)
            if isinstance(pixels, ShmPixels):
                data = self._copy_from_pool(producer, item, pixels)
            else:
                frame = frames[pixels.frame - 1]
                # The frame's memory is ours already: wrap it, no copy.
                data = np.frombuffer(frame.buffer, dtype=_dtype(item)).reshape(item.shape)
        except SlotError as err:
            log.debug("dropped an image of %s: %s", producer, err)
            self.counters.drop(DropReason.UNKNOWN_SLOT, 1, producer)
            return None
        except Overwritten:
            self.counters.drop(DropReason.OVERWRITTEN, 1, producer)
            return None
        return ReceivedImage(item.image_item(), data)

    def _pool(self, producer: str, pixels: ShmPixels) -> PoolReader:
        pool = self.pools.get(producer)
        if pool is None or pool.id != pixels.pool:
            raise SlotError(f"no pool {pixels.pool} attached for {producer}")
        return pool

    def _copy_from_pool(self, producer: str, item: WireItem, pixels: ShmPixels) -> np.ndarray:
        dtype = _dtype(item)
        out = self.recycler.empty(item.shape, dtype)
        return self._pool(producer, pixels).copy_out(pixels, item.shape, dtype, out)

    # ---------------------------------------------------------------- pools

    def attach(self, producer: str, pid: int, info: PoolInfo) -> None:
        """Map a producer's pool; raises SegmentError (OSError) if it cannot be."""
        current = self.pools.get(producer)
        if current is not None and current.id == info.id:
            return  # the same pool again, after a reconnect
        if current is None and len(self.pools) >= self.receiver.options.max_producers:
            raise SegmentError(0, f"already {len(self.pools)} pools mapped; send inline")
        reader = PoolReader(info, pid)
        self.release(producer)
        self.pools[producer] = reader
        pidfd = _pidfd(pid)
        if pidfd is not None:
            self._pidfds[pidfd] = producer
        with self.counters.lock:
            counters = self.counters.producer(producer)
            counters.pid, counters.pool = pid, info.id

    def release(self, producer: str) -> None:
        with self.counters.lock:  # first, so no status shows a pool count without its owner
            if producer in self.counters.producers:
                self.counters.producers[producer].pool = ""
        reader = self.pools.pop(producer, None)
        if reader is not None:
            reader.close()  # views still lent out keep the mapping until they go
            self.leases.forget(producer)
        for fd in [fd for fd, owner in self._pidfds.items() if owner == producer]:
            del self._pidfds[fd]
            os.close(fd)

    def watched_fds(self) -> list[int]:
        self._check_liveness()
        return list(self._pidfds)

    def producer_exited(self, pidfd: int) -> None:
        producer = self._pidfds.get(pidfd)
        if producer is not None:
            log.info("producer %s exited; its pool is released", producer)
            self.release(producer)

    def _check_liveness(self) -> None:
        """Without pidfds, find producers that exited by their pid, once a second."""
        now = time.monotonic()
        if now - self._last_liveness < LIVENESS_CHECK_S:
            return
        self._last_liveness = now
        watched = set(self._pidfds.values())
        for producer, reader in list(self.pools.items()):
            if producer not in watched and not _alive(reader.pid):
                self.release(producer)

    def close(self) -> None:
        for producer in list(self.pools):
            self.release(producer)


def _pidfd(pid: int) -> int | None:
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", "rb") as stat:
        return b") Z " not in stat.read()  # a zombie has exited
    return True
