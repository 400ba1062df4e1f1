"""The viewer process (Qt): ``python -m platestream.viewer.process --port 5555``.

* ``_app``: the process's life - napari first, then the receiver, records, signals.
* ``Pump`` (``_pump``): the GUI thread's side - arrivals -> plans -> napari, once per frame.
* ``StatusDock`` (``_status_dock``): the status dock and slice caption.
* ``DisplayStats`` (``_display_stats``): display rate and latency figures.
* ``OverviewLayers`` (``_overview``): the plate overviews in napari, and going to a well.
* ``assemble``: a viewer's pump, docks and overviews around a napari viewer and a
  receiver, in any process (benchmarks, tests and the napari plugin use it in theirs);
  ``max_texture_side``: the largest texture this GL draws (the overview's bound).
"""

from ._app import assemble, main
from ._overview import max_texture_side

__all__ = [
    "assemble",
    "main",
    "max_texture_side",
]
