"""The viewer's own figures: display rate and send-to-display latency (Qt-free).

The GUI thread records and ``sample()``s (after each apply that showed images, and once a
second for the dock); the receive thread reads ``state()`` for every pong. Each sample is
swapped in as one immutable value, so the receive thread never sees a half-updated state
and never waits for the GUI.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from platestream.schemas import DisplayState

from ..layer_model import StoreStatus

WINDOW_S = 5.0  # rates are averaged over this many seconds
LATENCIES = 1024  # recent batches whose latency the percentiles cover


class DisplayStats:
    def __init__(self, title: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.title = title
        self.clock = clock
        self.displayed = 0
        self.layers = 0
        self._latencies: deque[float] = deque(maxlen=LATENCIES)
        self._shown: deque[tuple[float, int]] = deque()  # (when, displayed so far)
        self._received: deque[tuple[float, int]] = deque()  # (when, received so far)
        self._state = DisplayState(title=title)
        self.store_kind = ""  # "disk" or "memory"
        self.store_status: Callable[[], StoreStatus | None] = lambda: None

    def record_display(self, images: int, latencies_s: list[float]) -> None:
        """An apply showed ``images`` images of batches sent ``latencies_s`` ago."""
        self.displayed += images
        self._latencies.extend(latencies_s)

    def sample(
        self, received: int, layers: int, pending: int = 0, shapes_pending: int = 0
    ) -> DisplayState:
        """Take this moment's counters into the rates and publish a new state."""
        now = self.clock()
        self.layers = layers
        for series, value in ((self._shown, self.displayed), (self._received, received)):
            series.append((now, value))
            while len(series) > 2 and now - series[1][0] >= WINDOW_S:
                series.popleft()
        p50, p99 = self.latency_ms()
        store = self.store_status()
        stored: dict[str, Any] = {"store": self.store_kind}
        if store is not None:
            stored.update(
                store_path=store.path,
                stored=store.stored,
                unstored=dict(store.unstored_reasons or {}),
                store_queued_bytes=int(store.queued_mb * 2**20),
                cache_bytes=int(store.cache_mb * 2**20),
                memory_budget_bytes=int(store.budget_mb * 2**20),
                store_error=store.error[:4096],
            )
        self._state = DisplayState(
            **stored,
            title=self.title,
            layers=layers,
            layers_pending=pending,
            shapes_pending=shapes_pending,
            displayed=self.displayed,
            receive_rate=_rate(self._received),
            display_rate=_rate(self._shown),
            latency_p50_ms=p50,
            latency_p99_ms=p99,
        )
        return self._state

    def latency_ms(self) -> tuple[float, float]:
        if not self._latencies:
            return (0.0, 0.0)
        values = np.fromiter(self._latencies, dtype=float) * 1000.0
        p50, p99 = np.percentile(values, [50, 99])
        return (max(0.0, float(p50)), max(0.0, float(p99)))  # clocks of two processes

    def state(self) -> DisplayState:
        """The last published state; safe from any thread."""
        return self._state

    def reset(self) -> None:
        self._latencies.clear()


def _rate(series: deque[tuple[float, int]]) -> float:
    if len(series) < 2:
        return 0.0
    (t0, v0), (t1, v1) = series[0], series[-1]
    return (v1 - v0) / (t1 - t0) if t1 > t0 else 0.0
