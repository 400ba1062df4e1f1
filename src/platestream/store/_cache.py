"""The plane cache: recent planes in RAM, within a byte budget.

Planes the disk has not taken yet are *pinned*: they are the only copy, so they are never
evicted; the writer unpins them once they are on disk. Everything else is evicted least
recently used first whenever the cache is over its budget. Pinned bytes above the budget
mean the disk lags: ``congested`` says so, and the viewer stops taking new images until
the writer catches up (backpressure, not loss).

Thread-safe: the GUI thread puts and gets, the writer thread unpins.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


class PlaneCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self._lru: OrderedDict[Hashable, Array] = OrderedDict()  # oldest first
        self._pinned: dict[Hashable, Array] = {}  # not on disk yet: never evicted
        self._lock = threading.Lock()
        self.bytes = 0
        self.pinned_bytes = 0
        self.peak_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._lru) + len(self._pinned)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._lru or key in self._pinned

    @property
    def congested(self) -> bool:
        """The budget is full of planes waiting for the disk."""
        return self.pinned_bytes >= self.budget

    @property
    def room(self) -> int:
        """Bytes of new planes the budget can take before the disk catches up."""
        return max(0, self.budget - self.pinned_bytes)

    def resize(self, budget_bytes: int) -> None:
        """A new budget; planes over it are evicted (pinned ones stay until written)."""
        with self._lock:
            self.budget = int(budget_bytes)
            self._evict()

    def put(self, key: Hashable, plane: Array, pinned: bool = False) -> None:
        with self._lock:
            self._drop(key)
            if pinned:
                self._pinned[key] = plane
                self.pinned_bytes += plane.nbytes
            else:
                self._lru[key] = plane
            self.bytes += plane.nbytes
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            self._evict()

    def get(self, key: Hashable) -> Array | None:
        with self._lock:
            plane = self._pinned.get(key)
            if plane is None:
                plane = self._lru.get(key)
                if plane is None:
                    self.misses += 1
                    return None
                self._lru.move_to_end(key)
            self.hits += 1
            return plane

    def unpin(self, key: Hashable, plane: Array | None = None) -> None:
        """The disk has ``key`` now (``plane``: only if the cache still holds that one; a
        newer plane put meanwhile stays pinned until its own write)."""
        with self._lock:
            held = self._pinned.get(key)
            if held is None or (plane is not None and held is not plane):
                return
            del self._pinned[key]
            self.pinned_bytes -= held.nbytes
            self._lru[key] = held
            self._evict()

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()
            self._pinned.clear()
            self.bytes = self.pinned_bytes = 0

    def _drop(self, key: Hashable) -> None:
        old = self._lru.pop(key, None)
        if old is None:
            old = self._pinned.pop(key, None)
            if old is None:
                return
            self.pinned_bytes -= old.nbytes
        self.bytes -= old.nbytes

    def _evict(self) -> None:
        while self.bytes > self.budget and self._lru:
            _, plane = self._lru.popitem(last=False)
            self.bytes -= plane.nbytes
            self.evicted += 1
