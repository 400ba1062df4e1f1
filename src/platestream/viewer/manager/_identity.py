"""How a viewer process is recognised (imports nothing: the process manager uses it)."""

from __future__ import annotations

#: On every viewer's command line (``python -m platestream.viewer.process``); the manager
#: checks it, with the process start time, before it signals a pid.
MARKER = "platestream.viewer.process"
#: The viewer's exit status when its ports are taken.
PORT_TAKEN = 3
#: The viewer's exit status when its receive thread failed for good (it would be deaf).
RECEIVER_FAILED = 4
