"""Session-wide hygiene: a test session that leaves a /dev/shm segment behind fails."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

SHM = Path("/dev/shm")
_OURS = ("ps_", "psm_", "platestream")


def _our_segments() -> set[str]:
    if not SHM.is_dir():
        return set()
    return {p.name for p in SHM.iterdir() if p.name.startswith(_OURS)}


@pytest.fixture(scope="session", autouse=True)
def no_leaked_shared_memory() -> object:
    before = _our_segments()
    yield
    leaked = sorted(_our_segments() - before)
    for name in leaked:  # clean up so one failing run does not poison the next
        with contextlib.suppress(FileNotFoundError):
            os.unlink(SHM / name)
    assert not leaked, f"test session leaked shared-memory segments: {leaked}"
