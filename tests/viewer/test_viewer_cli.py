"""``platestream viewer``: viewers found by their records on any port, a foreground viewer
stopped and killed like a detached one, and viewers bound beyond loopback with their own
keys, reached from "another host" (this machine's non-loopback address)."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from platestream.viewer.manager import read_record
from platestream.viewer.manager._processes import wait_exit

from .conftest import GUI, viewer_pids

pytestmark = GUI


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``platestream ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "platestream", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def listed(*args: str, host: str = "127.0.0.1") -> dict[int, dict[str, object]]:
    rows = json.loads(run_cli("viewer", "--host", host, "list", "--json", *args).stdout)
    return {int(row["port"]): row for row in rows}


def wait_ready_line(process: subprocess.Popen[str], timeout_s: float) -> dict[str, object]:
    """The viewer's 'ready' event from its standard output, within ``timeout_s``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                break
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                event: dict[str, object] = json.loads(line)
                return event
    raise AssertionError(f"no 'ready' from the viewer in {timeout_s} s")


def test_viewers_are_listed_on_any_port_and_a_foreground_viewer_is_killed_like_any(
    ports: Callable[[int], int],
) -> None:
    detached, foreground = ports(1), ports(1)
    run_cli("viewer", "start", "--detach", "--port", str(detached), "--title", "detached")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "platestream",
            "viewer",
            "start",
            "--port",
            str(foreground),
            "--title",
            "in the foreground",
            "--store",
            "memory",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        ready = wait_ready_line(process, 90)
        assert ready["pid"] == process.pid  # the start command became the viewer

        rows = listed()  # no port range given: found by their records
        assert {detached, foreground} <= set(rows)
        assert rows[foreground]["status"] == "green" and rows[foreground]["pid"] == process.pid
        assert rows[detached]["title"] == "detached" and rows[detached]["status"] == "green"
        for key in ("queue", "received", "displayed", "dropped", "rate"):
            assert key in rows[detached]

        killed = run_cli("viewer", "kill", str(foreground))
        assert f"killed viewer pid {process.pid}" in killed.stdout
        assert process.wait(10) == -9
        rows = listed()
        assert rows[foreground]["status"] == "red" and rows[foreground]["note"] == "dead"

        cleaned = run_cli("viewer", "stop", str(foreground))
        assert "had died" in cleaned.stdout and read_record(foreground) is None
        detached_pid = int(rows[detached]["pid"])  # type: ignore[call-overload]
        stopped = run_cli("viewer", "stop", str(detached))
        assert f"pid {detached_pid}) stopped" in stopped.stdout
        assert wait_exit(detached_pid, 0) and viewer_pids(detached) == []
        assert set(listed()) & {detached, foreground} == set()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def outside_address() -> str:
    """This machine's address that is not loopback (what another host would connect to)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    found = [info[4][0] for info in infos if not str(info[4][0]).startswith("127.")]
    if not found:
        done = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False)
        found = [a for a in done.stdout.split() if "." in a and not a.startswith("127.")]
    if not found:
        pytest.skip("this machine has no non-loopback IPv4 address to play another host")
    return str(found[0])


def test_a_viewer_bound_beyond_loopback_uses_its_keys_and_is_controlled_from_afar(
    ports: Callable[[int], int], tmp_path: Path
) -> None:
    port = ports(1)
    address = outside_address()
    viewer_keys, workstation_keys = tmp_path / "viewer-keys", tmp_path / "workstation-keys"
    for directory in (viewer_keys, workstation_keys):
        run_cli("keys", "--dir", str(directory), "init")
    run_cli("keys", "--dir", str(viewer_keys), "allow", str(workstation_keys / "producer.key"))
    run_cli(
        "keys", "--dir", str(workstation_keys), "trust", address, str(viewer_keys / "viewer.key")
    )

    everywhere = ("viewer", "--host", "0.0.0.0", "start", "--detach", "--port", str(port))
    refused = run_cli(*everywhere, check=False)
    assert refused.returncode == 1 and "--keys" in refused.stderr and read_record(port) is None

    run_cli(*everywhere, "--keys", str(viewer_keys), "--title", "server", "--store", "memory")
    record = read_record(port)
    assert record is not None and record.host == "0.0.0.0"
    assert record.keys == str(viewer_keys.resolve())
    with socket.create_connection((address, port + 1000), timeout=5):
        pass  # it listens beyond loopback (before: a loopback viewer, silently)

    # This machine finds it by its record and reaches it with the keys the record names.
    assert listed()[port]["status"] == "green"
    # From "another host": the workstation's keys, which trust the viewer's key.
    remote = ("viewer", "--host", address)
    rows = listed("--ports", f"{port}-{port}", "--keys", str(workstation_keys), host=address)
    assert rows[port]["status"] == "green" and rows[port]["title"] == "server"
    status = json.loads(
        run_cli(*remote, "status", str(port), "--keys", str(workstation_keys)).stdout
    )
    assert status["state"]["display"]["title"] == "server"
    shot = tmp_path / "shot.png"
    run_cli(*remote, "snapshot", str(port), str(shot), "--keys", str(workstation_keys))
    assert shot.read_bytes().startswith(b"\x89PNG")
    run_cli(*remote, "clear", str(port), "--keys", str(workstation_keys))
    # Without keys that this viewer trusts, nothing answers; kill is refused for a far host.
    stranger = run_cli(*remote, "status", str(port), check=False)
    assert stranger.returncode == 1 and "no viewer of yours answers" in stranger.stderr
    kill = run_cli(*remote, "kill", str(port), "--keys", str(workstation_keys), check=False)
    assert kill.returncode == 1 and "another host" in kill.stderr
    assert viewer_pids(port) == [record.pid]

    stopped = run_cli(*remote, "stop", str(port), "--keys", str(workstation_keys))
    assert f"{address}:{port} stopped" in stopped.stdout
    assert wait_exit(record.pid, 10) and viewer_pids(port) == []
