"""Qt slots that never raise: an exception escaping a slot aborts a PyQt6 process."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")
log = logging.getLogger(__name__)


def never_raises(slot: Callable[P, None]) -> Callable[P, None]:
    """Wrap a slot (or a napari event callback) so a failure is logged, not raised."""

    @functools.wraps(slot)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            slot(*args, **kwargs)
        except Exception:
            log.exception("%s failed; the viewer carries on", slot.__qualname__)

    return guarded
