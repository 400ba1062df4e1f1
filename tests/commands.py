"""Running a module of this interpreter as a command, bounded in time, output captured."""

from __future__ import annotations

import subprocess
import sys


def run_module(module: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m module args...``; a hung command fails the test after ``timeout_s``."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
