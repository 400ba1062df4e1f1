"""The instance manager, with real viewer processes under Xvfb: it lists viewers started
on arbitrary ports, turns one red within 2 s of ``kill -9``, launches one (shown
"starting" until it answers) and quits it, force-kills only after confirmation and only
a verified viewer, saves snapshots and clears; its screenshot shows green and red dots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.config import NapariStreamingConfig
from platestream.viewer.manager import ViewerRecord, open_viewer, write_record
from platestream.viewer.manager._processes import start_time, wait_exit

from ..viewer.conftest import GUI, viewer_pids
from ..viewer.streaming import png_of

pytestmark = GUI

GREEN_DOT, RED_DOT = (0x2E, 0xCC, 0x40), (0xE0, 0x30, 0x2F)


def has_colour(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    """How many pixels of ``image`` (rows, cols, RGB[A]) are ``colour``."""
    difference = np.abs(image[..., :3].astype(int) - np.array(colour)).max(axis=-1)
    return int((difference <= tolerance).sum())


def grab(widget: Any, path: Path) -> np.ndarray:
    assert widget.grab().save(str(path))
    return png_of(path)


def statuses(window: Any) -> dict[int, str]:
    return {row.port: row.status for row in window.instances.rows}


def test_the_manager_lists_shows_death_launches_quits_and_kills(
    qtbot: Any, ports: Callable[[int], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platestream.gui import ManagerWindow

    first, second, launched = ports(1), ports(1), ports(1)
    settings = NapariStreamingConfig(store="memory")
    viewers = [
        open_viewer(port=port, title=title, config=settings)
        for port, title in ((first, "first"), (second, "second"))
    ]
    window = ManagerWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(
        lambda: statuses(window).get(first) == statuses(window).get(second) == "green",
        timeout=15000,
    )
    titles = {row.port: row.title for row in window.instances.rows}
    assert titles[first] == "first" and titles[second] == "second"
    assert window.table.rowCount() == len(window.instances.rows)

    # kill -9: red within 2 s (the list refreshes once a second; a dead pid is seen at once)
    pong = viewers[1].pong
    assert pong is not None
    os.kill(pong.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    qtbot.waitUntil(lambda: statuses(window).get(second) == "red", timeout=2000)
    red_after = time.monotonic() - killed_at
    print(f"red {red_after:.2f} s after kill -9")
    shot = grab(window, tmp_path / "manager.png")
    assert has_colour(shot, GREEN_DOT) > 20 and has_colour(shot, RED_DOT) > 20

    # launch: "starting" until the first pong, then green; then quit it
    window.port.setValue(launched)
    window.title.setText("launched here")
    display = tmp_path / "display.toml"  # a pipeline file: its streaming settings apply
    display.write_text('[pipeline.napari_streaming]\nstore = "memory"\noverview = false\n')
    window.config_path.setText(str(display))
    window.launch()
    qtbot.waitUntil(lambda: statuses(window).get(launched) == "starting", timeout=5000)
    qtbot.waitUntil(lambda: statuses(window).get(launched) == "green", timeout=90000)
    assert window.port.value() != launched  # the next free port is offered
    row = window.instances.row(str(launched))
    assert row is not None and row.title == "launched here"
    command = Path(f"/proc/{row.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--no-overview" in command and command[command.index(b"--store") + 1] == b"memory"
    select(window, launched)
    window.quit_selected()
    qtbot.waitUntil(lambda: launched not in statuses(window), timeout=20000)
    assert wait_exit(row.pid, 5) and viewer_pids(launched) == []

    # snapshot and clear of the first viewer
    select(window, first)
    target = tmp_path / "first.png"
    monkeypatch.setattr(
        "platestream.gui._manager_window.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(target), "PNG (*.png)"),
    )
    window.snapshot_selected()
    qtbot.waitUntil(target.exists, timeout=30000)
    assert png_of(target).shape[0] > 100
    window.clear_selected()
    qtbot.waitUntil(lambda: "cleared" in window.last_message, timeout=10000)

    # force kill: nothing without confirmation; then the verified viewer only
    first_pid = window.instances.row(str(first)).pid  # type: ignore[union-attr]
    monkeypatch.setattr(window, "confirm_kill", lambda row: False)
    window.kill_selected()
    assert viewer_pids(first) == [first_pid]
    monkeypatch.setattr(window, "confirm_kill", lambda row: True)
    window.kill_selected()
    assert wait_exit(first_pid, 10)
    qtbot.waitUntil(lambda: statuses(window).get(first) == "red", timeout=5000)
    for viewer in viewers:
        viewer.close()


def select(window: Any, port: int) -> None:
    labels = [row.label for row in window.instances.rows]
    window.table.selectRow(labels.index(str(port)))
    assert window.selected().port == port


def test_force_kill_never_touches_a_process_that_is_not_the_viewer(
    qtbot: Any, ports: Callable[[int], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record naming another program's pid (a dead viewer's number, reused): listed red,
    and neither force kill nor quit signals it."""
    from platestream.gui import ManagerWindow

    port = ports(1)
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        started = start_time(stranger.pid)
        assert started is not None
        write_record(ViewerRecord(port, stranger.pid, "forged", started, "not a viewer"))
        window = ManagerWindow()
        qtbot.addWidget(window)
        qtbot.waitUntil(lambda: statuses(window).get(port) == "red", timeout=5000)
        row = window.instances.row(str(port))
        assert row is not None and "another process" in row.note
        select(window, port)
        monkeypatch.setattr(window, "confirm_kill", lambda row: True)
        window.kill_selected()
        qtbot.waitUntil(lambda: "nothing killed" in window.last_message, timeout=10000)
        window.quit_selected()
        qtbot.waitUntil(lambda: "record is removed" in window.last_message, timeout=10000)
        qtbot.waitUntil(lambda: port not in statuses(window), timeout=5000)
        assert stranger.poll() is None  # alive, never signalled
    finally:
        stranger.kill()
        stranger.wait(10)


def test_the_gui_command_without_a_display_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from platestream.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["gui"]) == 1
    assert "no display here" in capsys.readouterr().err
    monkeypatch.setenv("DISPLAY", ":99")
    assert main(["gui", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_a_viewer_on_another_host_is_added_with_its_key_and_quit(
    qtbot: Any, ports: Callable[[int], int], tmp_path: Path
) -> None:
    """A viewer bound beyond loopback with its own keys, reached at this machine's
    non-loopback address as another host would be: added by host, port and its public key
    (trusted in the user's key store), shown green with its title, and quit."""
    from platestream.backend import KeyStore
    from platestream.gui import ManagerWindow

    from ..viewer.test_viewer_cli import outside_address, run_cli

    address, port = outside_address(), ports(1)
    viewer_keys = tmp_path / "server-keys"
    run_cli("keys", "--dir", str(viewer_keys), "init")
    ours = KeyStore()
    ours.ensure_local()
    run_cli("keys", "--dir", str(viewer_keys), "allow", str(ours.directory / "producer.key"))
    run_cli(
        *("viewer", "--host", "0.0.0.0", "start", "--detach", "--port", str(port)),
        *("--keys", str(viewer_keys), "--title", "far away", "--store", "memory"),
    )
    window = ManagerWindow()
    qtbot.addWidget(window)
    label = f"{address}:{port}"
    window.remote_host.setText(address)
    window.remote_port.setValue(port)
    window.remote_key.setText(str(viewer_keys / "viewer.key"))
    window.add_remote()
    assert (ours.directory / "viewers" / f"{address}.key").exists()
    qtbot.waitUntil(
        lambda: getattr(window.instances.row(label), "status", "") == "green", timeout=10000
    )
    row = window.instances.row(label)
    assert row is not None and row.title == "far away" and row.pid > 0
    labels = [r.label for r in window.instances.rows]
    window.table.selectRow(labels.index(label))
    window.quit_selected()
    qtbot.waitUntil(lambda: f"{label} stopped" in window.last_message, timeout=20000)
    assert wait_exit(row.pid, 10) and viewer_pids(port) == []
    qtbot.waitUntil(lambda: window.instances.row(label) is None, timeout=5000)


def test_an_error_escaping_a_slot_is_said_not_fatal(qtbot: Any) -> None:
    """``platestream gui`` installs an exception hook: an error in a slot is logged and
    shown in the status bar, where PyQt6's default would abort the application."""
    from platestream.gui import GuiApp

    gui = GuiApp()
    qtbot.addWidget(gui.manager)
    try:
        raise ValueError("a bad value")
    except ValueError as err:
        gui.report_error(type(err), err, err.__traceback__)
    assert gui.manager.last_message == "error: ValueError: a bad value"
    gui.close()
