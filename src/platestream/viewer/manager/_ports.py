"""Who holds a viewer port: nobody, a platestream viewer (answering or not), or something else.

Imports no Qt. A port pair is the data port and its control port (data + 1000).

* a **viewer** answers a ping on the control port with a pong;
* a **silent viewer** does not answer, but the record it wrote names a pid that
  ``procs.is_viewer`` confirms (command line and start time): it hangs;
* anything else bound to either port is **foreign**, and never touched;
* **free**: both ports can be bound here.
"""

from __future__ import annotations

import contextlib
import enum
import socket
from dataclasses import dataclass

from platestream.backend import ControlTimeout, request_once
from platestream.schemas import Ping, Pong, WireError

from ._processes import ViewerProcess, is_viewer
from ._records import ViewerRecord, read_record

CONTROL_OFFSET = 1000


class Holder(enum.Enum):
    FREE = "free"
    VIEWER = "viewer"
    SILENT_VIEWER = "silent viewer"
    FOREIGN = "foreign"


@dataclass(frozen=True)
class PortState:
    port: int
    holder: Holder
    pong: Pong | None = None
    record: ViewerRecord | None = None

    @property
    def process(self) -> ViewerProcess | None:
        if self.pong is not None:
            return ViewerProcess(self.pong.pid, self.port, self.pong.started_at)
        if self.record is not None:
            return ViewerProcess(self.record.pid, self.port, self.record.started_at)
        return None


def ping(host: str, port: int, timeout_s: float = 1.0) -> Pong | None:
    """The viewer's pong, or None if nothing answered like a platestream viewer."""
    try:
        reply = request_once(host, port, Ping(), timeout_s=timeout_s)
    except (ControlTimeout, WireError, OSError):
        return None
    return reply.message if isinstance(reply.message, Pong) else None


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """True if a TCP socket could bind ``port`` here right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as ZeroMQ sets it: a port in TIME_WAIT is free for a new viewer.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listening(port: int, host: str = "127.0.0.1", timeout_s: float = 0.2) -> bool:
    """True if something accepts TCP connections on ``port`` (cheap: no ZeroMQ)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout_s):
        return True
    return False


def inspect(port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> PortState:
    """Who holds the pair ``(port, port + 1000)`` on this machine."""
    record = read_record(port)
    pair_free = bindable(port) and bindable(port + CONTROL_OFFSET)
    if pair_free:
        return PortState(port, Holder.FREE, record=record)
    pong = ping(host, port, timeout_s) if listening(port + CONTROL_OFFSET, host) else None
    if pong is not None and pong.data_port == port:
        return PortState(port, Holder.VIEWER, pong=pong, record=record)
    if record is not None and is_viewer(ViewerProcess(record.pid, port, record.started_at)):
        return PortState(port, Holder.SILENT_VIEWER, record=record)
    return PortState(port, Holder.FOREIGN, record=record)
