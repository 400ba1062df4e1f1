"""The viewer's layer model, Qt-free: received images -> plans -> arrays -> napari calls.

* ``Plans`` (``_plans``): one ``platestream.layering`` plan per display config.
* ``LayerStore`` (``_layer_store``): the layers' contents, written plane by plane; image
  and labels layers hold planes by reference (``_stack``), the pixels live in a plane
  source (``_sources``): RAM, or the run store on disk behind a bounded cache.
* ``NapariApplier`` (``_napari_apply``): the only code that calls napari's layer API;
  duck-typed, so it runs against a ``ViewerModel`` in tests.
* ``layers_report`` (``_layers_report``): the ``layers`` request's answer.
* ``Overviews`` (``_overview``): per step, the whole plate at a glance - each well a tile
  at its plate position, filled as planes arrive (shown by ``process._overview``).

Imports no Qt (checked by import-linter).
"""

from ._layer_store import LayerStore
from ._layers_report import layers_report
from ._napari_apply import NapariApplier
from ._overview import (
    Overviews,
    PlateOverview,
    check_site_layout,
    compose,
    plate_format,
    shrink,
    site_grid,
)
from ._plans import Plans, display_key
from ._sources import (
    MemoryPlanes,
    StoredPlanes,
    StoredPlate,
    StoreStatus,
    open_source,
    plates_to_show,
    stored_plates,
)
from ._stack import LayerPlanes, LevelView, StoredPlane

__all__ = [
    "LayerPlanes",
    "LayerStore",
    "LevelView",
    "MemoryPlanes",
    "NapariApplier",
    "Overviews",
    "Plans",
    "PlateOverview",
    "StoreStatus",
    "StoredPlane",
    "StoredPlanes",
    "StoredPlate",
    "check_site_layout",
    "compose",
    "display_key",
    "layers_report",
    "open_source",
    "plate_format",
    "plates_to_show",
    "shrink",
    "site_grid",
    "stored_plates",
]
