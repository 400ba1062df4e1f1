"""The GUI tests use the viewer tests' fixtures: private records and keys, free ports, no
viewer left behind."""

from __future__ import annotations

from tests.viewer.conftest import ports, private_records

__all__ = ["ports", "private_records"]
