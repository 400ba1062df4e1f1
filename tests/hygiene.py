"""This test session's shared-memory segments, and nobody else's.

Importing this module (conftest does, before any test runs) tags every segment that this
session and the processes it starts create: ``PLATESTREAM_SHM_TAG`` goes into their names
(see ``platestream.backend.shm.name_prefix``). The leak checks look only at tagged names, so
two test runs on one machine - or a viewer the user left running - cannot fail each other.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SHM = Path("/dev/shm")
TAG = os.environ.setdefault("PLATESTREAM_SHM_TAG", secrets.token_hex(4))
PREFIX = f"psm_{TAG}_"


def our_segments() -> set[str]:
    """The names of this session's segments in /dev/shm."""
    if not SHM.is_dir():
        return set()
    return {p.name for p in SHM.iterdir() if p.name.startswith(PREFIX)}
