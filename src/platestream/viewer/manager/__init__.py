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
from ._processes import ViewerProcess, is_viewer, kill_viewer
from ._records import ViewerRecord, read_record, remove_record, write_record
from ._visualizer import NapariStreamVisualizer, stop_viewer

__all__ = [
    "MARKER",
    "PORT_TAKEN",
    "RECEIVER_FAILED",
    "Holder",
    "NapariStreamVisualizer",
    "ViewerProcess",
    "ViewerRecord",
    "inspect",
    "is_viewer",
    "kill_viewer",
    "listening",
    "ping",
    "read_record",
    "remove_record",
    "stop_viewer",
    "write_record",
]
