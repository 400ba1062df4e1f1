"""platestream.store: the run store - a viewer's planes on disk as OME-Zarr.

Qt-free. NGFF 0.5 (Zarr v3) in the HCS plate layout, written as planes arrive (zarr-python
for the arrays, yaozarrs for the NGFF metadata), with a pyramid per image; the bounded RAM
cache in front of it; the runs on disk (list, remove, reopen).
"""

from ._cache import PlaneCache
from ._layout import Locator, PlaneLocation, PlateLayout, plate_name
from ._run import (
    FORMAT,
    RunStore,
    StoreCounters,
    StoreError,
    downsample,
    pyramid_shapes,
    read_run_info,
)
from ._runs import (
    RunInfo,
    default_store_dir,
    list_runs,
    new_run_dir,
    remove_run,
    resolve_run,
    run_info,
    store_dir_of,
)
from ._wells import WellPosition, row_name, well_position

__all__ = [
    "FORMAT",
    "Locator",
    "PlaneCache",
    "PlaneLocation",
    "PlateLayout",
    "RunInfo",
    "RunStore",
    "StoreCounters",
    "StoreError",
    "WellPosition",
    "default_store_dir",
    "downsample",
    "list_runs",
    "new_run_dir",
    "plate_name",
    "pyramid_shapes",
    "read_run_info",
    "remove_run",
    "resolve_run",
    "row_name",
    "run_info",
    "store_dir_of",
    "well_position",
]
