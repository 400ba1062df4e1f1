"""Benchmark smoke tests (marker ``bench``): tiny sizes, figures checked for shape, never
for speed. ``pytest -m "not bench"`` leaves them out. Viewers they start keep their records
in the test's own directory, as in the viewer tests."""

from __future__ import annotations

import pytest

from tests.viewer.conftest import private_records  # noqa: F401  (autouse fixture)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == "bench":
            item.add_marker(pytest.mark.bench)
