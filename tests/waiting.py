"""The one bounded wait of the tests: poll a condition, fail (never hang) when time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; raise AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        # A poll interval, not synchronisation: the predicate decides. It grows, so a costly
        # predicate (a status request to a viewer) is not asked hundreds of times a second.
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
