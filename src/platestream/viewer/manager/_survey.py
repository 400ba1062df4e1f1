"""Finding viewers and their state at a glance: what ``viewer list`` prints and the GUI's
instance list shows, found the same way.

The viewers of this machine are found from their records (any port: each viewer writes
one when it listens), viewers elsewhere by the addresses a user gives. Each is asked for a
pong on its control port - its counters come with it - under a short deadline, all at
once, so one hung viewer costs the survey one deadline, not one per viewer. A local viewer
whose pid is gone is red at once, without waiting for a ping to time out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from platestream.backend import is_local, pid_alive
from platestream.schemas import Pong

from ._ports import contact_host, listening, ping
from ._processes import ViewerProcess, is_viewer
from ._records import ViewerRecord, all_records, read_record

GREEN, RED = "green", "red"


@dataclass(frozen=True)
class Address:
    """Where a viewer is: its host and data port, and the key directory to reach it with
    ("": this user's key store)."""

    host: str
    port: int
    keys: str = ""

    @property
    def label(self) -> str:
        return str(self.port) if is_local(self.host) else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ViewerInfo:
    """One viewer as seen now: green with its pong, or red with why (``note``)."""

    address: Address
    status: str  # GREEN or RED
    pid: int = 0
    title: str = ""
    note: str = ""
    pong: Pong | None = None

    @property
    def port(self) -> int:
        return self.address.port

    def counts(self) -> dict[str, float]:
        """queue, producers, received, displayed, dropped, rate (images shown per second)."""
        if self.pong is None:
            return {}
        state = self.pong.state
        return {
            "queue": state.queue_depth,
            "producers": state.producers,
            "received": state.received,
            "displayed": state.display.displayed,
            "dropped": state.dropped,
            "rate": round(state.display.display_rate, 1),
        }

    def row(self) -> dict[str, object]:
        """A JSON-ready row (``viewer list --json``)."""
        row: dict[str, object] = {
            "host": self.address.host,
            "port": self.port,
            "pid": self.pid,
            "title": self.title,
            "status": self.status,
        }
        row.update(self.counts())
        if self.note:
            row["note"] = self.note
        return row


def look(address: Address, timeout_s: float = 0.5) -> ViewerInfo | None:
    """The viewer at ``address`` now, or None if nothing there is (or was) a viewer of
    this user: no record and no answer."""
    record = read_record(address.port) if is_local(address.host) else None
    if record is not None:
        return _look_local(address, record, timeout_s)
    host = address.host
    if not listening(address.port + 1000, host, timeout_s):
        return None
    pong = ping(host, address.port, timeout_s, address.keys or None)
    if pong is None or pong.data_port != address.port:
        return None  # another program, or another user's viewer: not ours to list
    return ViewerInfo(address, GREEN, pong.pid, pong.state.display.title, pong=pong)


def _look_local(address: Address, record: ViewerRecord, timeout_s: float) -> ViewerInfo:
    red = ViewerInfo(address, RED, record.pid, record.title)
    if not pid_alive(record.pid):
        return _with_note(red, "dead")
    if not is_viewer(ViewerProcess(record.pid, record.port, record.started_at)):
        return _with_note(red, "gone (its pid is another process now)")
    host = contact_host(record.host)
    pong = ping(host, address.port, timeout_s, address.keys or record.keys or None)
    if pong is None:
        return _with_note(red, "not answering")
    return ViewerInfo(address, GREEN, pong.pid, pong.state.display.title or record.title, pong=pong)


def _with_note(info: ViewerInfo, note: str) -> ViewerInfo:
    return ViewerInfo(info.address, info.status, info.pid, info.title, note, info.pong)


def local_addresses(ports: Iterable[int] = ()) -> list[Address]:
    """This machine's viewers by their records (any port), plus ``ports`` to look at too
    (a viewer of an older version, or one whose record was deleted)."""
    found = {record.port for record in all_records()} | set(ports)
    return [Address("127.0.0.1", port) for port in sorted(found)]


def survey(addresses: Sequence[Address], timeout_s: float = 0.5) -> list[ViewerInfo]:
    """``look`` at every address at once; the viewers found, in the order given."""
    if not addresses:
        return []
    with ThreadPoolExecutor(min(16, len(addresses)), "platestream-survey") as pool:
        found = list(pool.map(lambda address: look(address, timeout_s), addresses))
    return [info for info in found if info is not None]


def key_dir(keys: str | Path | None) -> str:
    return str(Path(keys).expanduser().resolve()) if keys else ""
