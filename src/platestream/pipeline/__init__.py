"""platestream.pipeline: see DESIGN.md for what this package owns."""

from ._demo import DEMO_PLATE, demo_pipeline
from ._model import Pipeline, file_streams, load_pipeline_file, pipeline_streams
from ._plate_folder import PlateError, read_plate
from ._progress import Progress, summary
from ._runner import RunOptions, run_pipeline, viewer_configs, well_tasks
from ._synthetic import SyntheticPlate, write_plate
from ._well_work import WellResult

__all__ = [
    "DEMO_PLATE",
    "Pipeline",
    "PlateError",
    "Progress",
    "RunOptions",
    "SyntheticPlate",
    "WellResult",
    "demo_pipeline",
    "file_streams",
    "load_pipeline_file",
    "pipeline_streams",
    "read_plate",
    "run_pipeline",
    "summary",
    "viewer_configs",
    "well_tasks",
    "write_plate",
]
