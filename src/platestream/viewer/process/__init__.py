"""The viewer process (Qt): ``python -m platestream.viewer.process --port 5555``.

* ``_app``: the process's life - napari first, then the receiver, records, signals.
* ``Pump`` (``_pump``): the GUI thread's side - arrivals -> plans -> napari, once per frame.
* ``StatusDock`` (``_status_dock``): the status dock and slice caption.
* ``DisplayStats`` (``_display_stats``): display rate and latency figures.
* ``OverviewLayers`` (``_overview``): the plate overviews in napari, and going to a well.
* ``assemble``: a viewer's pump, docks and overviews around a napari viewer and a
  receiver, in any process (benchmarks and tests use it in theirs).
"""

from ._app import assemble, main

__all__ = [
    "assemble",
    "main",
]
