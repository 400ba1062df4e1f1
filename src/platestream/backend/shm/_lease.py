"""Zero-copy receiving: pixels lent straight out of a producer's pool.

With ``ReceiverOptions(zero_copy=True)`` the receiver does not copy shared-memory pixels
out. Each image's ``data`` is a read-only view of the producer's slot, and a SlotLease
keeps that slot from being reused: the batch is not reported done to its producer - so
the slot is not rewritten - until every lease of it is released. A lease is released by
``release()`` (on the image or its batch; ``with batch:`` does it on exit) or, failing
that, when the view and every array derived from it are garbage collected.

One case remains where a leased slot is rewritten: in live mode a producer whose pool is
full lets a newer image of the same plane take over the slot of an older one the viewer
has not acknowledged (newest wins). So a consumer copies what it keeps and then asks
``intact()``: False means the slot changed before or during the copy - the same seqlock
test the copying receiver makes - and the copy must be discarded.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import numpy as np

from ._segment import GENERATION


class SlotLease:
    """One image's claim on a pool slot, from its arrival until ``release()``."""

    __slots__ = ("_book", "_entry", "_generation", "_released", "forget", "producer", "seq")

    def __init__(
        self, book: LeaseBook, producer: str, seq: int, entry: np.ndarray, generation: int
    ) -> None:
        self.producer = producer
        self.seq = seq
        self._book = book
        self._entry = entry  # the slot's row of the pool's table (a view: keeps it mapped)
        self._generation = generation
        self._released = False
        self.forget: Callable[[], None] | None = None  # drops the slot's pages (see release)

    def intact(self) -> bool:
        """True while the slot still holds the image it held when the batch arrived."""
        return int(self._entry[GENERATION]) == self._generation

    def release(self) -> None:
        """Give the slot back (idempotent, any thread); its pages leave this process's
        memory (``forget``), the producer's pool keeps them."""
        first = not self._released
        self._book.give_back(self)
        forget = self.forget
        if first and forget is not None:
            self.forget = None
            forget()


class LeaseBook:
    """How many images of each batch are on loan, per producer. Thread-safe.

    ``give_back`` may run in any thread (the display's, or the garbage collector's); it
    only records the change and calls ``wake`` so the receive thread - which owns the
    sockets - recomputes what is done and answers the producer's waiting sync.
    """

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._held: dict[str, dict[int, int]] = {}  # producer -> {seq: images on loan}
        self._changed: set[str] = set()

    def lend(
        self, producer: str, seq: int, view: np.ndarray, entry: np.ndarray, generation: int
    ) -> SlotLease:
        """A lease of ``view`` (a view of ``entry``'s slot), released at the latest when
        ``view`` and all arrays derived from it are gone."""
        lease = SlotLease(self, producer, seq, entry, generation)
        with self._lock:
            held = self._held.setdefault(producer, {})
            held[seq] = held.get(seq, 0) + 1
        # Every array derived from ``view`` has, as numpy collapses bases, the array that
        # wraps the slot's buffer as its base: that one lives as long as any of them.
        owner = view
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        weakref.finalize(owner, lease.release).atexit = False
        return lease

    def give_back(self, lease: SlotLease) -> None:
        with self._lock:
            if lease._released:
                return
            lease._released = True
            held = self._held.get(lease.producer)
            if held is None or lease.seq not in held:
                return  # the producer was forgotten (it detached or exited)
            held[lease.seq] -= 1
            if held[lease.seq]:
                return
            del held[lease.seq]
            if not held:
                del self._held[lease.producer]
            self._changed.add(lease.producer)
        self._wake()

    def oldest(self, producer: str) -> int | None:
        """The oldest batch of ``producer`` with an image still on loan."""
        with self._lock:
            held = self._held.get(producer)
            return min(held) if held else None

    def on_loan(self) -> int:
        """Images on loan, all producers."""
        with self._lock:
            return sum(sum(held.values()) for held in self._held.values())

    def changed(self) -> set[str]:
        """Producers with batches fully given back since the last call."""
        with self._lock:
            changed, self._changed = self._changed, set()
            return changed

    def forget(self, producer: str) -> None:
        """``producer`` is gone: its leases no longer hold anything back."""
        with self._lock:
            self._held.pop(producer, None)
            self._changed.discard(producer)
