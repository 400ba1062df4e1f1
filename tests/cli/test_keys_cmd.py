"""``platestream keys``: the CURVE key workflow from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from platestream.backend import KeyStore
from platestream.cli import main


def test_init_show_allow_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    viewer_dir, producer_dir = tmp_path / "viewer", tmp_path / "producer"
    assert main(["keys", "--dir", str(viewer_dir), "init"]) == 0
    assert main(["keys", "--dir", str(producer_dir), "init"]) == 0
    assert (
        main(
            [
                "keys",
                "--dir",
                str(viewer_dir),
                "allow",
                str(producer_dir / "producer.key"),
                "--name",
                "lab-server",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "keys",
                "--dir",
                str(producer_dir),
                "trust",
                "workstation",
                str(viewer_dir / "viewer.key"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["keys", "--dir", str(viewer_dir), "show"]) == 0
    shown = capsys.readouterr().out
    producer_public = KeyStore(producer_dir).pair("producer").public.decode()
    assert "allowed lab-server" in shown and producer_public in shown
    assert KeyStore(producer_dir).client("workstation") is not None
    own = KeyStore(viewer_dir).pair("producer").public  # this user's producers, on loopback
    assert KeyStore(viewer_dir).server().allowed == {producer_public.encode(), own}


def test_init_keeps_existing_keys_and_generate_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "--dir", str(tmp_path), "init"]) == 0
    first = KeyStore(tmp_path).pair("viewer")
    assert main(["keys", "--dir", str(tmp_path), "init"]) == 0
    assert KeyStore(tmp_path).pair("viewer") == first
    assert main(["keys", "--dir", str(tmp_path), "generate", "viewer"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "--dir", str(tmp_path), "generate", "viewer", "--force"]) == 0
    assert KeyStore(tmp_path).pair("viewer") != first


def test_allow_refuses_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    assert main(["keys", "--dir", str(tmp_path), "allow", str(junk)]) == 1


def test_the_default_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATESTREAM_KEYS_DIR", str(tmp_path / "k"))
    assert main(["keys", "init"]) == 0
    assert (tmp_path / "k" / "viewer.key_secret").exists()
