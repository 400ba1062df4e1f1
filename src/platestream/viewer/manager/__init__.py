"""The viewer process manager, Qt-free: start, find, reuse and stop viewer processes.

* ``NapariStreamVisualizer`` (``_visualizer``): what a pipeline or script holds to start or
  reuse a viewer and stream to it.
* ``_ports``: who holds a viewer port; ``_records``: the viewers' records on disk;
  ``_survey``: every viewer and its state at a glance (``viewer list``, the GUI);
  ``_processes``: stopping a pid only after it proves to be that viewer; ``_identity``: how
  a viewer process is recognised.

Imports no Qt (checked by import-linter): pipeline workers and the CLI use it.
"""

from ._identity import MARKER, PORT_TAKEN, RECEIVER_FAILED
from ._ports import (
    Holder,
    contact_host,
    credentials,
    free_port,
    inspect,
    listening,
    ping,
    request_viewer,
)
from ._processes import ViewerProcess, is_viewer, kill_viewer, wait_exit
from ._records import ViewerRecord, all_records, read_record, remove_record, write_record
from ._survey import GREEN, RED, Address, ViewerInfo, key_dir, local_addresses, look, survey
from ._visualizer import (
    NapariStreamVisualizer,
    StopResult,
    ViewerError,
    open_run,
    open_viewer,
    stop_viewer,
    store_arguments,
    viewer_command,
)
from ._xvfb import HeadlessError, XServer, needs_display, start_xvfb

__all__ = [
    "GREEN",
    "MARKER",
    "PORT_TAKEN",
    "RECEIVER_FAILED",
    "RED",
    "Address",
    "HeadlessError",
    "Holder",
    "NapariStreamVisualizer",
    "StopResult",
    "ViewerError",
    "ViewerInfo",
    "ViewerProcess",
    "ViewerRecord",
    "XServer",
    "all_records",
    "contact_host",
    "credentials",
    "free_port",
    "inspect",
    "is_viewer",
    "key_dir",
    "kill_viewer",
    "listening",
    "local_addresses",
    "look",
    "needs_display",
    "open_run",
    "open_viewer",
    "ping",
    "read_record",
    "remove_record",
    "request_viewer",
    "start_xvfb",
    "stop_viewer",
    "store_arguments",
    "survey",
    "viewer_command",
    "wait_exit",
    "write_record",
]
