"""platestream.gui: the desktop GUI (``platestream gui``) - the instance manager and the
image browser, PyQt6 windows over the viewer's process manager and the streaming backend.

* ``ManagerWindow`` (``_manager_window``): every viewer of this machine (found by its
  record, on any port) and the remote ones added by address, green or red with their
  counters; launch, quit, force kill, snapshot, clear. Its model, ``Instances``
  (``_instances``), surveys the viewers once a second in a worker thread.
* ``BrowserWindow`` (``_browser_window``): a plate folder as a well grid (``_plate_grid``)
  and a filtered table of images with a thumbnail (``_thumbnail``); chosen images stream
  to a viewer in the background (``_stream_job``), with a progress bar and cancel.

Only this package and ``platestream.viewer`` import Qt (checked by import-linter).
"""

from __future__ import annotations

from ._app import GuiApp, main
from ._browser_window import BrowserWindow
from ._instances import Instances, Row
from ._manager_window import ManagerWindow
from ._stream_job import JobResult, stream_images

__all__ = [
    "BrowserWindow",
    "GuiApp",
    "Instances",
    "JobResult",
    "ManagerWindow",
    "Row",
    "main",
    "stream_images",
]
