"""The front door: ``import platestream`` is light and exports its API (the README's
"From Python" block runs in ``tests/viewer/test_readme_python.py``)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

import platestream


def test_the_package_exports_its_api_and_its_version() -> None:
    assert platestream.__version__ == version("platestream")
    for name in platestream.__all__:
        assert getattr(platestream, name) is not None, name
    assert platestream.open_viewer.__module__ == "platestream.viewer.manager._visualizer"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        platestream.nothing  # noqa: B018


def test_importing_the_package_imports_no_qt_napari_or_pipeline() -> None:
    code = (
        "import sys, platestream\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('PyQt6', 'qtpy', 'napari', 'zarr', 'zmq') or m.startswith('platestream.')]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout
