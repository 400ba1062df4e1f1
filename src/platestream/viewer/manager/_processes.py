"""Stopping a viewer process by pid - only after it proves it is that viewer.

A pid reported by a pong or a record may belong to another process by now (the viewer
died and the number was reused). Before any signal, ``is_viewer`` checks that the process
(1) runs ``python -m platestream.viewer.process`` with ``--port <port>`` on its command line and
(2) started no later than the ``started_at`` the viewer reported (a process started later
cannot be the one that reported it) and not long before. Anything else is left alone.
Waiting for an exit uses a pidfd where there is one: no polling, no sleep.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import time
from dataclasses import dataclass

from platestream.backend import pid_alive

from ._identity import MARKER

STARTUP_SLACK_S = 600.0  # a viewer reports started_at at most this long after its exec
CLOCK_SLACK_S = 2.0  # /proc start times are in clock ticks since boot: allow rounding


@dataclass(frozen=True)
class ViewerProcess:
    """A viewer as it identified itself (pong or record)."""

    pid: int
    port: int
    started_at: float


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return [part.decode(errors="replace") for part in raw.read().split(b"\0") if part]
    except OSError:  # gone, or no /proc (then nothing is ever verified, so never signalled)
        return []


def start_time(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as raw:
            stat = raw.read().decode()
        with open("/proc/stat", "rb") as raw:
            boot = next(
                float(line.split()[1])
                for line in raw.read().decode().splitlines()
                if line.startswith("btime")
            )
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parens
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def is_viewer(process: ViewerProcess) -> bool:
    """True only if ``process.pid`` is still the platestream viewer that reported itself."""
    if process.pid <= 1 or process.pid == os.getpid():
        return False
    argv = _cmdline(process.pid)
    if MARKER not in argv or not _has_port(argv, process.port):
        return False
    started = start_time(process.pid)
    if started is None:
        return False
    return process.started_at - STARTUP_SLACK_S <= started <= process.started_at + CLOCK_SLACK_S


def _has_port(argv: list[str], port: int) -> bool:
    for flag, value in itertools.pairwise(argv):
        if flag == "--port" and value == str(port):
            return True
    return f"--port={port}" in argv


def wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` has ended (True) or ``timeout_s`` passed (False)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        return _wait_exit_polling(pid, timeout_s)
    try:
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout_s))
        return bool(ready) or not pid_alive(pid)
    finally:
        os.close(fd)


def _wait_exit_polling(pid: int, timeout_s: float) -> bool:
    # Only where pidfd is missing (not Linux >= 5.3): a bounded check every 50 ms.
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(process: ViewerProcess, grace_s: float = 5.0) -> bool:
    """SIGTERM the verified viewer, then SIGKILL (verified again) if it lingers.

    Returns True if the viewer is gone, False if ``process`` is not (or no longer) a
    platestream viewer - then nothing was signalled - or it survived SIGKILL's wait.
    """
    if not is_viewer(process):
        return not pid_alive(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    if wait_exit(process.pid, grace_s):
        return True
    return kill_viewer(process)


def kill_viewer(process: ViewerProcess, wait_s: float = 5.0) -> bool:
    """SIGKILL the viewer, if it still is one; True once it is gone."""
    if not is_viewer(process):
        return not pid_alive(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    return wait_exit(process.pid, wait_s)
