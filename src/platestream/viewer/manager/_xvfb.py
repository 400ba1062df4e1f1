"""A private X server for a viewer on a machine without a display.

``Xvfb -displayfd`` writes the display number once the server accepts connections, so we
wait on that pipe (with a timeout) instead of sleeping and hoping. A viewer started with
``--headless`` runs its own server, which lives exactly as long as the viewer: it is
stopped when the viewer ends, and the kernel ends it if the viewer dies (kill -9), through
``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

XVFB_ARGS = ("-screen", "0", "1280x1024x24", "-nolisten", "tcp")
PR_SET_PDEATHSIG = 1  # from linux/prctl.h


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


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it ends."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_xvfb(
    timeout_s: float = 15.0, detach: bool = False, die_with_parent: bool = False
) -> XServer:
    """Start Xvfb on a free display; ``detach`` puts it in its own session;
    ``die_with_parent`` (Linux) ends it with the calling process, however that ends."""
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
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
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
