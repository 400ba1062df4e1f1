"""A run's workers below its viewers: the scheduling priority of a run's session.

A run's worker processes compute as hard as they can, and a viewer on the same machine must
still get a core the moment it has images to show. ``os.nice`` alone does not give it one
on most Linux machines: with *autogroup* scheduling (``kernel.sched_autogroup_enabled``, on
by default in the kernels of Debian, Ubuntu and Fedora) the CPU is first shared between
sessions, equally, and only then among a session's processes by their nice values. Every
viewer runs in a session of its own, so workers 10 nicer than their runner still took half
the machine against it - on 2 cores, the viewer's GUI thread had to share the other half
with its receive and prefault threads.

``session_nicer`` lowers the priority of the run's whole session (its autogroup: the
runner, its workers, and the shell it was started from) for as long as the run lasts, as
``nice -n 10`` on the command would, and gives the old value back after. Lowering a
priority needs no privilege; giving back a value at or above 0 needs none either. Where
there is no autogroup (another OS, autogroup off, a container without ``/proc`` write
access), nothing happens: ``os.nice`` in each worker is then the whole story.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
AUTOGROUP = Path("/proc/self/autogroup")
ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")
_lock = threading.Lock()
_holders = 0  # runs in this process inside session_nicer (nested or in threads)
_restore: tuple[int, int] | None = None  # (value to give back, value we set)


def autogroup_nice(path: Path = AUTOGROUP) -> int | None:
    """The nice value of this process's autogroup, or None where there is none to read."""
    try:
        if ENABLED.read_text().strip() != "1":
            return None
        # e.g. "/autogroup-692 nice 0"
        return int(path.read_text().split("nice", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def _set(value: int, path: Path = AUTOGROUP) -> bool:
    try:
        path.write_text(f"{value}\n")
    except OSError as err:
        log.debug("cannot set the session's scheduling priority (%s): %s", path, err)
        return False
    return True


@contextlib.contextmanager
def session_nicer(niceness: int) -> Iterator[bool]:
    """Inside the block, this process's session is at least ``niceness`` nice against other
    sessions (see the module docs); yields whether that took effect. Nested and concurrent
    uses share one change, given back when the last ends (unless someone else changed the
    value meanwhile)."""
    global _holders, _restore
    if niceness <= 0:  # nothing asked: nothing changed, nothing held
        yield False
        return
    with _lock:
        if _holders == 0:
            before = autogroup_nice()
            if before is not None and before < niceness and _set(niceness):
                _restore = (before, niceness)
        _holders += 1
        took = _restore is not None
    try:
        yield took
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _restore is not None:
                before, ours = _restore
                _restore = None
                if autogroup_nice() == ours:
                    _set(before)
