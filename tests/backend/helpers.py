"""Helpers for backend tests: subprocess receivers and producers, bounded waits."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platestream.config import NapariStreamingConfig

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src"
PRODUCER_SCRIPT = Path(__file__).with_name("producer_script.py")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def run_python(code: str, *args: str, timeout_s: float = 120.0) -> str:
    """Run ``code`` in a fresh interpreter that imports the source tree; its stdout, stripped
    (a non-zero exit fails the test)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout_s,
        check=True,
    )
    return out.stdout.strip()


def config(port: int, **fields: Any) -> Any:
    return NapariStreamingConfig(**{"napari_host": "127.0.0.1", "napari_port": port, **fields})


@dataclass
class Child:
    """A subprocess that speaks JSON lines on stdout."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    history: list[dict[str, Any]] = field(default_factory=list)  # every line, as read
    stderr: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                parsed = json.loads(line)
                self.history.append(parsed)
                self.lines.put(parsed)
            except ValueError:
                self.lines.put({"event": "text", "text": line})
        self.lines.put({"event": "eof"})

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def expect(self, event: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """The next line with this event (earlier other lines are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stderr = self.stderr[-20:]
                raise AssertionError(f"no {event!r} line in {timeout_s}s; stderr: {stderr}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line.get("event") == event:
                return line
            if line.get("event") == "eof":
                raise AssertionError(f"process ended before {event!r}; stderr: {self.stderr[-20:]}")

    def collect(self, event: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        return [self.expect(event, timeout_s) for _ in range(count)]

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def wait(self, timeout_s: float = 20.0) -> int:
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(20)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def spawn(args: Sequence[str], **kwargs: Any) -> Child:
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kwargs.pop("env", env()),
        **kwargs,
    )
    return Child(proc)


def spawn_receiver(*args: str, port: int = 0) -> tuple[Child, dict[str, Any]]:
    child = spawn(["-m", "platestream.backend.bare_receiver", "--port", str(port), *args])
    return child, child.expect("ready")


def spawn_producer(port: int, *args: str, **kwargs: Any) -> Child:
    return spawn([str(PRODUCER_SCRIPT), "--port", str(port), *args], **kwargs)


def terminate(child: Child) -> None:
    child.signal(signal.SIGTERM)
    try:
        child.wait(10)
    finally:
        child.stop()


def viewer_status(port: int) -> Any:
    """A receiver's StatusReport (over its control port)."""
    from platestream.backend import request_once
    from platestream.schemas import StatusReport, StatusRequest

    reply = request_once("127.0.0.1", port, StatusRequest(), timeout_s=10)
    assert isinstance(reply.message, StatusReport), reply.message
    return reply.message


def echoed(child: Child) -> list[dict[str, Any]]:
    """The image lines a receiver (--echo) printed so far and were not read yet."""
    lines = []
    while not child.lines.empty():
        line = child.lines.get_nowait()
        if line.get("event") == "image":
            lines.append(line)
    return lines


def until_stopped(child: Child, timeout_s: float = 30.0) -> tuple[list[dict[str, Any]], Any]:
    """Stop a receiver (SIGTERM) and read what it printed: its image lines, and its final
    counters (the "stopped" line; None if it was killed before it could say them)."""
    child.signal(signal.SIGTERM)
    images: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = child.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.get("event") == "image":
            images.append(line)
        elif line.get("event") == "stopped":
            return images, line["status"]
        elif line.get("event") == "eof":
            return images, None
    raise AssertionError(f"the receiver did not stop in {timeout_s}s")
