"""platestream.pipeline: a minimal pipeline runner that streams every step to the viewers.

``Pipeline`` of ``FunctionStep``/``FunctionCall`` (from Python, or a pipeline TOML file), run
over a plate folder by ``run_pipeline`` on a pool of worker processes (``RunOptions``); the
demo plate and pipeline (``write_plate``, ``demo_pipeline``).
"""

from . import _functions as functions  # the built-in image functions, by their public name
from ._demo import DEMO_PLATE, demo_pipeline
from ._files import DiskFiles, FileManager, StoreFiles
from ._model import (
    FunctionCall,
    FunctionStep,
    Pipeline,
    file_streams,
    load_pipeline_file,
    pipeline_streams,
)
from ._plate_folder import (
    Plate,
    PlateError,
    PlateImage,
    plate_path_parser,
    read_plate,
    skipped_report,
)
from ._priority import session_nicer
from ._progress import Progress, summary
from ._runner import RunOptions, run_pipeline, viewer_configs, well_tasks
from ._synthetic import SyntheticPlate, sample_plate, write_plate
from ._well_work import WellResult

__all__ = [
    "DEMO_PLATE",
    "DiskFiles",
    "FileManager",
    "FunctionCall",
    "FunctionStep",
    "Pipeline",
    "Plate",
    "PlateError",
    "PlateImage",
    "Progress",
    "RunOptions",
    "StoreFiles",
    "SyntheticPlate",
    "WellResult",
    "demo_pipeline",
    "file_streams",
    "functions",
    "load_pipeline_file",
    "pipeline_streams",
    "plate_path_parser",
    "read_plate",
    "run_pipeline",
    "sample_plate",
    "session_nicer",
    "skipped_report",
    "summary",
    "viewer_configs",
    "well_tasks",
    "write_plate",
]
