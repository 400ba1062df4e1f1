"""The runs on disk: where they go, listing them, removing one. Nothing is removed unasked."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ._run import StoreError, folder_size, read_run_info


def default_store_dir() -> Path:
    """``platestream/runs`` in the user's data directory (XDG: ``$XDG_DATA_HOME``, else
    ``~/.local/share``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "platestream" / "runs"


def store_dir_of(setting: str) -> Path:
    """The folder of a ``store_dir`` setting (empty: the default, created if missing)."""
    if not setting:
        path = default_store_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(setting).expanduser()


def new_run_dir(store_dir: Path, title: str) -> Path:
    """A fresh run folder name: ``20261202-101500_<title>`` (a suffix if taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:40] or "run"
    path = store_dir / f"{stamp}_{slug}"
    number = 2
    while path.exists():
        path = store_dir / f"{stamp}_{slug}-{number}"
        number += 1
    return path


@dataclass(frozen=True)
class RunInfo:
    path: Path
    title: str
    created: str
    plates: tuple[str, ...]
    size_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


def run_info(path: Path) -> RunInfo:
    info = read_run_info(path)
    plates = tuple(
        sorted(
            entry.name
            for entry in path.iterdir()
            if entry.is_dir() and (entry / "zarr.json").exists()
        )
    )
    return RunInfo(
        path, str(info.get("title", "")), str(info.get("created", "")), plates, folder_size(path)
    )


def list_runs(store_dir: Path) -> list[RunInfo]:
    """Every run folder in ``store_dir``, oldest first (folders that are not runs: skipped)."""
    if not store_dir.is_dir():
        return []
    runs = []
    for entry in sorted(store_dir.iterdir()):
        if entry.is_dir() and (entry / "zarr.json").exists():
            try:
                runs.append(run_info(entry))
            except StoreError:
                continue
    return runs


def resolve_run(name: str, store_dir: Path) -> Path:
    """A run given by path, by folder name in ``store_dir``, or by a unique prefix of it."""
    direct = Path(name).expanduser()
    if (direct / "zarr.json").exists():
        return direct
    candidates = [r.path for r in list_runs(store_dir) if r.name.startswith(name)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise StoreError(f"no run {name!r} (not a run folder, nor a run in {store_dir})")
    names = ", ".join(p.name for p in candidates[:5])
    raise StoreError(f"{name!r} names {len(candidates)} runs in {store_dir}: {names}")


def remove_run(path: Path) -> int:
    """Remove one run folder (checked to be a run store first); returns the bytes freed."""
    read_run_info(path)  # raises unless it is a platestream run
    size = folder_size(path)
    shutil.rmtree(path)
    return size
