"""The receiver's counters: totals, drops by reason, and per producer - all visible.

Updated by the receive thread, read from any thread (status requests, the viewer's UI),
so every access takes the lock. The number of producers remembered is bounded: the
least recently heard from is forgotten first (its drops stay in the totals).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from platestream.schemas import DropReason, ProducerReport


@dataclass
class ProducerCounters:
    pid: int = 0
    pool: str = ""
    batches: int = 0
    images: int = 0
    bytes: int = 0
    last_seq: int = 0
    done_seq: int = 0
    dropped: Counter[DropReason] = field(default_factory=Counter)

    def report(self) -> ProducerReport:
        return ProducerReport(
            pid=self.pid,
            pool=self.pool,
            batches=self.batches,
            images=self.images,
            bytes=self.bytes,
            last_seq=self.last_seq,
            done_seq=self.done_seq,
            dropped={r.value: n for r, n in sorted(self.dropped.items())},
        )


class ReceiverCounters:
    def __init__(self, max_producers: int = 1024) -> None:
        self.lock = threading.Lock()
        self.max_producers = max_producers
        self.batches = 0
        self.images = 0
        self.filtered = 0  # left out by the viewer's show filter
        #: told of every drop as it is counted (the bare receiver's --echo prints them)
        self.on_drop: Callable[[DropReason, int], None] | None = None
        self.bytes = 0
        self.dropped: Counter[DropReason] = Counter()
        self.producers: OrderedDict[str, ProducerCounters] = OrderedDict()

    def producer(self, producer_id: str) -> ProducerCounters:
        """The counters of ``producer_id`` (created on first sight). Call with the lock held."""
        counters = self.producers.get(producer_id)
        if counters is None:
            counters = self.producers[producer_id] = ProducerCounters()
            while len(self.producers) > self.max_producers:
                self.producers.popitem(last=False)
        else:
            self.producers.move_to_end(producer_id)
        return counters

    def drop(self, reason: DropReason, count: int = 1, producer: str | None = None) -> None:
        with self.lock:
            self.dropped[reason] += count
            if producer is not None and producer in self.producers:
                self.producers[producer].dropped[reason] += count
        if self.on_drop is not None:  # before the drop is acknowledged to the producer
            self.on_drop(reason, count)

    def received(self, producer: str, images: int, nbytes: int) -> None:
        with self.lock:
            self.batches += 1
            self.images += images
            self.bytes += nbytes
            counters = self.producer(producer)
            counters.batches += 1
            counters.images += images
            counters.bytes += nbytes

    def total_dropped(self) -> int:
        with self.lock:
            return sum(self.dropped.values())

    def dropped_by_reason(self) -> dict[str, int]:
        with self.lock:
            return {r.value: n for r, n in sorted(self.dropped.items())}

    def producer_reports(self) -> dict[str, ProducerReport]:
        with self.lock:
            return {pid: c.report() for pid, c in self.producers.items()}
