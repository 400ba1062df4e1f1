from __future__ import annotations

from pathlib import Path

from platestream.config import NapariStreamingConfig

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_every_field_is_documented() -> None:
    text = DOC.read_text()
    missing = [n for n in NapariStreamingConfig.field_names() if f"| `{n}` |" not in text]
    assert not missing, f"docs/configuration.md lacks rows for {missing}"
