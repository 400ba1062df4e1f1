"""The viewer process (Qt): ``python -m platestream.viewer.process --port 5555``.

* ``_app``: the process's life - napari first, then the receiver, records, signals.
* ``Pump`` (``_pump``): the GUI thread's side - arrivals -> plans -> napari, once per frame.
* ``StatusDock`` (``_status_dock``): the status dock and slice caption.
* ``DisplayStats`` (``_display_stats``): display rate and latency figures.
"""

from ._app import main

__all__ = [
    "main",
]
