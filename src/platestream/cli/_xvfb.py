"""A private X server for a viewer on a machine without a display.

``Xvfb -displayfd`` writes the display number once the server accepts connections, so we
wait on that pipe (with a timeout) instead of sleeping and hoping.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

XVFB_ARGS = ("-screen", "0", "1280x1024x24", "-nolisten", "tcp")


class HeadlessError(RuntimeError):
    """No X server could be started."""


@dataclass
class XServer:
    display: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def needs_display() -> bool:
    return not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")


def start_xvfb(timeout_s: float = 15.0, detach: bool = False) -> XServer:
    """Start Xvfb on a free display; ``detach`` puts it in its own session."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise HeadlessError("no display and no Xvfb: install it (apt-get install xvfb)")
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [binary, "-displayfd", str(write_end), *XVFB_ARGS],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=detach,
        )
    finally:
        os.close(write_end)
    try:
        number = _read_display(read_end, process, timeout_s)
    finally:
        os.close(read_end)
    return XServer(f":{number}", process)


def _read_display(fd: int, process: subprocess.Popen[bytes], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            process.wait()
            raise HeadlessError("Xvfb did not start (no display number within the timeout)")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                continue
            data += chunk
    return int(data.strip())
