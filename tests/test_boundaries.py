"""The package boundaries of DESIGN.md, checked two ways: statically and at import time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# vispy's colour module comes in with napari's colormaps; it is not Qt. Qt bindings are.
QT_PREFIXES = ("PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "superqt", "napari._qt", "napari.qt")


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import platestream",
        "import platestream.config",
        "import platestream.layering",
        "import platestream.schemas",
        "import platestream.cli; platestream.cli.build_parser()",
        "import platestream.viewer.manager",  # pipelines and the CLI import it, GUI-less
        "import platestream.viewer.sink, platestream.viewer.plans, platestream.viewer.store",
    ],
)
def test_importing_never_imports_qt(statement: str) -> None:
    loaded = _modules_after_import(statement)
    qt = sorted(m for m in loaded if m.split(".")[0] in QT_PREFIXES or m.startswith(QT_PREFIXES))
    assert not qt, f"{statement!r} imported Qt: {qt[:5]}"


def test_layering_imports_only_config_and_numpy() -> None:
    loaded = _modules_after_import("import platestream.layering")
    ours = {m for m in loaded if m.startswith("platestream.")}
    assert all(m.startswith(("platestream.config", "platestream.layering")) for m in ours), ours
    assert "zmq" not in loaded


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
