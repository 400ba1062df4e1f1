"""The README's "From Python" block runs as written against a real viewer."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import GUI

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(180)]


def test_the_readmes_python_block_runs_as_written(
    ports: Callable[[int], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    port = ports(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block.replace("port=5555", f"port={port}"), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.sent == 6 and not report.dropped  # type: ignore[attr-defined]
    assert (tmp_path / "screen42.png").stat().st_size > 0
