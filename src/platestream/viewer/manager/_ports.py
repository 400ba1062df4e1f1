"""Who holds a viewer port: nobody, a platestream viewer (answering or not), or something else.

Imports no Qt. A port pair is the data port and its control port (data + 1000).

* a **viewer** answers a ping on the control port with a pong;
* a **silent viewer** does not answer, but the record it wrote names a pid that
  ``procs.is_viewer`` confirms (command line and start time): it hangs;
* anything else bound to either port is **foreign**, and never touched;
* **free**: both ports can be bound here, and no record names a live viewer on them (a
  viewer bound to another address of this machine leaves 127.0.0.1's ports bindable).

A viewer is reached with this user's credentials (``credentials_for``), or those of a key
directory: the one given (``keys``), else the one its record names (``viewer start --keys``).
A viewer that bound every address (``0.0.0.0``) is reached on loopback.
"""

from __future__ import annotations

import contextlib
import enum
import socket
from dataclasses import dataclass
from pathlib import Path

from platestream.backend import (
    ControlTimeout,
    CurveClient,
    KeyStore,
    Reply,
    credentials_for,
    is_local,
    request_once,
)
from platestream.schemas import Message, Ping, Pong, WireError

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


def contact_host(bound: str) -> str:
    """Where this machine reaches a viewer that bound ``bound``."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "*": "127.0.0.1", "::": "::1"}.get(
        bound, bound
    )


def credentials(host: str, keys: str | Path | None = None) -> CurveClient | None:
    """What to present to the viewer on ``host``: the key directory ``keys``'s credentials
    if given, else this user's key store's."""
    return credentials_for(host, KeyStore(Path(keys)) if keys else None)


def request_viewer(
    host: str, port: int, message: Message, timeout_s: float, keys: str | Path | None = None
) -> Reply:
    """One control request to the viewer on ``host:port``. On this machine it goes where
    the viewer's record says it bound, with the key directory the record names (unless
    ``keys`` is given): a viewer bound to 0.0.0.0 with its own keys is reached on loopback
    with them. Raises ControlTimeout when no answer comes."""
    record = read_record(port) if is_local(host) else None
    if record is not None:
        host, keys = contact_host(record.host), keys or record.keys or None
    return request_once(host, port, message, timeout_s=timeout_s, curve=credentials(host, keys))


def ping(
    host: str, port: int, timeout_s: float = 1.0, keys: str | Path | None = None
) -> Pong | None:
    """The viewer's pong, or None if nothing answered like a platestream viewer."""
    try:
        reply = request_once(host, port, Ping(), timeout_s=timeout_s, curve=credentials(host, keys))
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


def inspect(
    port: int,
    host: str = "127.0.0.1",
    timeout_s: float = 1.0,
    keys: str | Path | None = None,
) -> PortState:
    """Who holds the pair ``(port, port + 1000)`` on ``host`` (this machine by default;
    on another host a viewer answers or nothing is known: ``VIEWER``, ``FREE`` when nothing
    listens, else ``FOREIGN``)."""
    if not is_local(host):
        return _inspect_remote(port, host, timeout_s, keys)
    record = read_record(port)
    live = record is not None and is_viewer(ViewerProcess(record.pid, port, record.started_at))
    if not live and bindable(port) and bindable(port + CONTROL_OFFSET):
        return PortState(port, Holder.FREE, record=record)
    if live and record is not None:  # reach it where it bound, with its keys
        host, keys = contact_host(record.host), keys or record.keys or None
    pong = ping(host, port, timeout_s, keys) if listening(port + CONTROL_OFFSET, host) else None
    if pong is not None and pong.data_port == port:
        return PortState(port, Holder.VIEWER, pong=pong, record=record)
    if live:
        return PortState(port, Holder.SILENT_VIEWER, record=record)
    return PortState(port, Holder.FOREIGN, record=record)


def _inspect_remote(port: int, host: str, timeout_s: float, keys: str | Path | None) -> PortState:
    if not listening(port + CONTROL_OFFSET, host, timeout_s):
        return PortState(port, Holder.FREE)
    pong = ping(host, port, timeout_s, keys)
    if pong is not None and pong.data_port == port:
        return PortState(port, Holder.VIEWER, pong=pong)
    return PortState(port, Holder.FOREIGN)


def free_port(first: int, attempts: int = 20) -> int | None:
    """The first port from ``first`` on whose pair is free here, or None within ``attempts``."""
    return next(
        (p for p in range(first, first + attempts) if inspect(p).holder is Holder.FREE), None
    )
