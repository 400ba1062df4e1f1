"""The README's headless recipe, run as printed (only the port changed), with no display:
the viewer outlives the start command, draws, and its X server ends with it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from platestream.backend import pid_alive
from platestream.viewer.manager import ping, wait_exit

from ..viewer.streaming import png_of
from ..waiting import wait_until

ROOT = Path(__file__).parents[2]
pytestmark = [
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb"),
    pytest.mark.timeout(180),
]


def recipe() -> list[str]:
    """The README's command that starts a viewer on a headless server, as words."""
    section = ROOT.joinpath("README.md").read_text().split("## Viewing on a headless server")[1]
    (line,) = re.findall(r"^(platestream viewer start [^\n#]*)", section, re.M)[:1]
    return line.split()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_readme_headless_recipe_keeps_a_viewer_and_its_display(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    words = recipe()
    assert words[:3] == ["platestream", "viewer", "start"] and "--headless" in words
    words[words.index("--port") + 1] = str(port)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    exe = str(Path(sys.executable).parent / "platestream")
    started = subprocess.run(
        [exe, *words[1:]], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert started.returncode == 0, started.stderr
    pong = ping("127.0.0.1", port)
    assert pong is not None, "the viewer is gone once the start command returned"
    try:
        xservers = [c for c in children_of(pong.pid) if "Xvfb" in command_line(c)]
        assert len(xservers) == 1, "the viewer runs its own X server"
        snapshot = tmp_path / "headless.png"
        shot = subprocess.run(
            [exe, "viewer", "snapshot", str(port), str(snapshot)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shot.returncode == 0, shot.stderr
        assert png_of(snapshot).shape[0] > 100  # napari drew on that display
        assert ping("127.0.0.1", port) is not None  # still alive after drawing
    finally:
        os.kill(pong.pid, signal.SIGKILL)  # the worst end: the X server must not outlive it
    assert wait_exit(pong.pid, 20)
    wait_until(lambda: not any(pid_alive(x) for x in xservers), 20, "the X server ended")
