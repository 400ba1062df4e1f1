"""Viewer records: a small JSON file per running viewer, so tools can find what stopped answering.

A viewer writes ``viewer-<port>.json`` (pid, viewer id, start time, title, the address it
bound and its key directory, if it was given one) once it listens,
and removes it when it ends cleanly. A record whose viewer does not answer is a viewer that
hangs or died (``kill -9``): ``platestream viewer list`` shows it red, and the process
manager may stop it - by that pid, and only after checking the pid is still that viewer
(``procs``). Records live in ``$PLATESTREAM_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/platestream``, else ``/tmp/platestream-<uid>`` (mode 0700).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ViewerRecord:
    port: int
    pid: int
    viewer_id: str
    started_at: float
    title: str
    host: str = "127.0.0.1"  # the address it bound
    keys: str = ""  # its key directory (--keys), or "" for this user's own keys


def runtime_dir() -> Path:
    explicit = os.environ.get("PLATESTREAM_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "platestream"
    else:
        path = Path(tempfile.gettempdir()) / f"platestream-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _path(port: int) -> Path:
    return runtime_dir() / f"viewer-{port}.json"


def write_record(record: ViewerRecord) -> Path:
    """Write atomically: a reader sees the old record or the new, never half of one."""
    path = _path(record.port)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".viewer-", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(record), out)
    os.replace(tmp, path)
    return path


def read_record(port: int) -> ViewerRecord | None:
    try:
        fields = json.loads(_path(port).read_text())
        return ViewerRecord(**fields)
    except (OSError, ValueError, TypeError):
        return None


def remove_record(port: int, viewer_id: str | None = None) -> None:
    """Remove the record of ``port`` (only if it is ``viewer_id``'s, when given)."""
    record = read_record(port)
    if record is None or (viewer_id is not None and record.viewer_id != viewer_id):
        return
    with contextlib.suppress(FileNotFoundError):
        _path(port).unlink()


def all_records() -> list[ViewerRecord]:
    records = []
    for path in sorted(runtime_dir().glob("viewer-*.json")):
        with contextlib.suppress(ValueError):
            record = read_record(int(path.stem.removeprefix("viewer-")))
            if record is not None:
                records.append(record)
    return records
