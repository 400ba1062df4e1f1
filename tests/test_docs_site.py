"""The documentation site builds, strictly, and its API reference documents the exports."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _text(page: Path) -> str:
    raw = re.sub(r"<script.*?</script>", "", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    exe = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    result = subprocess.run(
        [exe, "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize(
    ("page", "names"),
    [
        ("config", ["NapariStreamingConfig", "lossless_budget_s", "resolve", "ConfigLayer"]),
        ("layering", ["ImageItem", "plane_key", "update", "PlanState"]),
        ("backend", ["NapariStreamingBackend", "save_batch", "Receiver", "SaveReport"]),
        ("backend-shm", ["SlotPool", "PoolReader", "LeaseBook"]),
        ("viewer-manager", ["NapariStreamVisualizer", "stop_viewer"]),
        ("viewer-layer_model", ["NapariApplier", "Plans"]),
        ("pipeline", ["run_pipeline", "Pipeline"]),
        ("gui", ["ManagerWindow", "BrowserWindow", "Instances"]),
    ],
)
def test_the_api_reference_documents_each_package(site: Path, page: str, names: list[str]) -> None:
    text = _text(site / "api" / page / "index.html")
    missing = [name for name in names if name not in text]
    assert not missing, f"api/{page} lacks {missing}"


def test_the_architecture_page_names_modules_that_exist(site: Path) -> None:
    """Every module the walk-through names (before the table of old names) is real."""
    walk = (ROOT / "docs" / "architecture.md").read_text().split("## Where the modules went")[0]
    paths = set(re.findall(r"`((?:[a-z_]+/)+_?[a-z_]+\.py)`", walk))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (ROOT / "src" / "platestream" / p).exists())
    assert not missing
    text = _text(site / "architecture" / "index.html")
    assert "save_batch" in text and "NapariApplier" in text
