"""The viewer process manager, Qt-free: start, find, reuse and stop viewer processes.

* ``NapariStreamVisualizer`` (``_visualizer``): what a pipeline or script holds to start or
  reuse a viewer and stream to it.
* ``_ports``: who holds a viewer port; ``_records``: the viewers' records on disk;
  ``_processes``: stopping a pid only after it proves to be that viewer; ``_identity``: how
  a viewer process is recognised.

Imports no Qt (checked by import-linter): pipeline workers and the CLI use it.
"""

from ._identity import MARKER, PORT_TAKEN, RECEIVER_FAILED
from ._ports import Holder, inspect, listening, ping
from ._processes import ViewerProcess, is_viewer, kill_viewer, wait_exit
from ._records import ViewerRecord, read_record, remove_record, write_record
from ._visualizer import (
    NapariStreamVisualizer,
    open_run,
    open_viewer,
    stop_viewer,
    store_arguments,
)
from ._xvfb import HeadlessError, XServer, needs_display, start_xvfb

__all__ = [
    "MARKER",
    "PORT_TAKEN",
    "RECEIVER_FAILED",
    "HeadlessError",
    "Holder",
    "NapariStreamVisualizer",
    "ViewerProcess",
    "ViewerRecord",
    "XServer",
    "inspect",
    "is_viewer",
    "kill_viewer",
    "listening",
    "needs_display",
    "open_run",
    "open_viewer",
    "ping",
    "read_record",
    "remove_record",
    "start_xvfb",
    "stop_viewer",
    "store_arguments",
    "wait_exit",
    "write_record",
]
