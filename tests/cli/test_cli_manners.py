"""The CLI's manners: every option says what it is for, and a closed pipe is no error."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from platestream.cli import build_parser, main


def _options(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:  # argparse keeps no public list of them
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            found.append((path, action))
    return found


def test_every_option_and_argument_has_help_text() -> None:
    options = _options(build_parser(), "platestream")
    assert len(options) > 40
    silent = [f"{path} {a.option_strings or a.dest}" for path, a in options if not a.help]
    assert not silent, f"options without help: {silent}"


def test_output_into_a_closed_pipe_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``platestream config schema | head -1``: the reader leaves, no traceback follows."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # as head does after its lines
    stdout = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["config", "schema"]) == 0
    finally:
        stdout.close()
