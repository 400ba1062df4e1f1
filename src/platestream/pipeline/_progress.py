"""The run's progress line and its closing summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from ._well_work import WellResult


class Progress:
    """``[#####.....] 12/24 wells | 1152 streamed | 0 dropped | 1 failed | 3.2 s``.

    On a terminal the line redraws in place; otherwise it prints at every tenth of the wells,
    so logs stay short.
    """

    WIDTH = 24

    def __init__(self, total: int, out: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.out = out or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.streamed = 0
        self.dropped = 0
        self.failed = 0
        self.started = time.monotonic()
        self._tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._last_tenth = -1

    def line(self) -> str:
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        return (
            f"[{bar}] {self.done}/{self.total} wells | {self.streamed} streamed | "
            f"{self.dropped} dropped | {self.failed} failed | "
            f"{time.monotonic() - self.started:.1f} s"
        )

    def update(self, result: WellResult) -> None:
        self.done += 1
        self.streamed += result.streamed
        self.dropped += sum(result.dropped.values())
        self.failed += result.failure is not None
        if not self.enabled:
            return
        if self._tty:
            end = "\n" if self.done == self.total else ""
            print(f"\r{self.line()}", end=end, file=self.out, flush=True)
            return
        tenth = 10 * self.done // max(self.total, 1)
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            print(self.line(), file=self.out, flush=True)


def summary(results: list[WellResult], elapsed_s: float) -> str:
    failed = [r for r in results if r.failure is not None]
    dropped: Counter[str] = Counter()
    for result in results:
        dropped.update(result.dropped)
    drops = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or "none"
    lines = [
        f"{len(results) - len(failed)}/{len(results)} wells done in {elapsed_s:.1f} s: "
        f"{sum(r.outputs for r in results)} images produced, "
        f"{sum(r.streamed for r in results)} streamed, dropped: {drops}, "
        f"{sum(r.written for r in results)} written",
    ]
    for result in failed:
        lines.append(f"FAILED {result.failure}")
    return "\n".join(lines)
