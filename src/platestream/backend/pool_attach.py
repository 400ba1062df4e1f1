"""Which shared-memory pool a link uses, and getting the viewer to map it.

Tried in order: a memfd (Linux), then a named segment; the first the viewer maps wins. A
pool that cannot be created (``/dev/shm`` or memory too small) sends the link to inline
frames for good, with one warning. A viewer that refuses a pool (say it runs in another
container) gets inline frames for that session only. A named pool's name is unlinked as
soon as the attach is answered - or fails - so it never outlives the handshake.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING

from platestream.schemas import Attach, Attached, Detach, PoolKind

from .control_client import ControlClient, ControlTimeout
from .pool import SlotPool
from .shm import HAS_MEMFD, SegmentError

if TYPE_CHECKING:
    from .link import Link, LinkOptions

log = logging.getLogger(__name__)


class PoolAttacher:
    """Owns a link's pools. ``active`` is read by the delivering thread under send_lock."""

    def __init__(self, link: Link, want_shm: bool, pool_bytes: int, options: LinkOptions):
        self.link = link
        self.pool_bytes = pool_bytes
        self.slots = options.pool_slots
        self.rpc_timeout_s = options.rpc_timeout_s
        if options.pool_kind is not None:
            self.kinds = [options.pool_kind]
        else:
            self.kinds = [PoolKind.MEMFD, PoolKind.NAMED] if HAS_MEMFD else [PoolKind.NAMED]
        self.create_failed = not want_shm  # inline for good
        self.active: SlotPool | None = None  # the pool the current session uses, if any
        self._pools: dict[PoolKind, SlotPool] = {}
        self._retired: list[SlotPool] = []
        self._lock = threading.Lock()

    def attach(self, control: ControlClient, viewer_id: str) -> bool:
        """Get a pool mapped by the viewer; False only if the viewer stopped answering."""
        self.active = None
        if self.create_failed:
            return True
        for kind in self.kinds:
            pool = self._pool(kind)
            if pool is None:
                continue
            try:
                reply = control.request(
                    Attach(
                        producer=self.link.producer_id, pid=os.getpid(), pool=pool.segment.info()
                    ),
                    self.rpc_timeout_s,
                )
            except (ControlTimeout, ValueError):  # ValueError: WireError, a garbled reply
                return False
            finally:
                self._after_attach(kind, pool)
            if isinstance(reply.message, Attached):
                self.active = pool
                return True
            log.info("viewer %s did not map %s pool: %s", viewer_id, kind.value, reply.message)
        if not self.create_failed:
            log.info("viewer %s: no shared memory this session; sending pixels inline", viewer_id)
        return True

    def _pool(self, kind: PoolKind) -> SlotPool | None:
        with self._lock:
            if kind in self._pools:
                return self._pools[kind]
        try:
            pool = SlotPool(self.pool_bytes, kind, self.slots)
        except (SegmentError, OSError, ValueError) as err:
            if kind is self.kinds[-1]:
                self.create_failed = True
                log.warning(
                    "cannot create a %d MiB shared-memory pool (%s); streaming to %s:%s with "
                    "inline frames instead",
                    self.pool_bytes >> 20,
                    err,
                    self.link.host,
                    self.link.port,
                )
            return None
        with self._lock:
            self._pools[kind] = pool
        return pool

    def _after_attach(self, kind: PoolKind, pool: SlotPool) -> None:
        if kind is not PoolKind.NAMED:
            return  # a memfd has no name; it can be attached again by the next viewer
        pool.segment.unlink()  # mapped by the viewer now, or never: the name goes either way
        with self._lock:
            # Unnamed, it cannot be attached again: the next session gets a fresh one.
            self._pools.pop(kind, None)
            self._retired.append(pool)

    def collect_retired(self) -> None:
        """Close pools no session uses any more (call under the link's send_lock)."""
        with self._lock:
            retired = [p for p in self._retired if p is not self.active]
            self._retired = [p for p in self._retired if p is self.active]
        for pool in retired:
            pool.close()

    def detach(self, control: ControlClient, producer: str) -> None:
        # A viewer that does not answer notices our exit on its own (pidfd).
        with contextlib.suppress(ControlTimeout, ValueError):
            control.request(Detach(producer=producer), min(self.rpc_timeout_s, 0.5))

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values()) + self._retired
            self._pools.clear()
            self._retired.clear()
        self.active = None
        for pool in pools:
            pool.close()
