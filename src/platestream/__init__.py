"""platestream: stream pipeline images live into persistent napari viewers.

The front door, for a first hour from Python::

    import numpy as np
    import platestream

    viewer = platestream.open_viewer(port=5555, title="screen 42")  # started or reused
    item = platestream.ImageItem({"well": "A01", "site": 1, "channel": "DAPI"}, 0, "raw",
                                 (512, 512), "uint16")
    viewer.save_batch([np.zeros((512, 512), np.uint16)], [item])
    viewer.status(); viewer.layers(); viewer.snapshot("now.png")
    viewer.close()                    # the viewer stays (persistent); viewer.stop() ends it

* viewers: ``open_viewer``, ``open_run`` (a run of the run store), ``NapariStreamVisualizer``;
* images: ``ImageItem`` (components, step, shape and dtype of one image);
* configuration: ``NapariStreamingConfig``, ``StreamingConfig``, ``PipelineConfig`` (frozen
  dataclasses; ``platestream config`` shows and explains them);
* files: ``FileManager`` (``save_batch`` to disk, an OME-Zarr run store and/or a viewer);
* pipelines: ``Pipeline``, ``FunctionStep``, ``FunctionCall``, ``RunOptions``,
  ``load_pipeline_file``, and ``run_pipeline``, which starts (or reuses) the viewers the
  pipeline streams to and waits for each to show its share, as ``platestream run`` does.

Importing this package imports none of them (nor Qt, nor napari): each is imported on
first use, so a pipeline worker that only streams pays for nothing else.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("platestream")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"

_EXPORTS = {
    "open_viewer": "platestream.viewer.manager",
    "open_run": "platestream.viewer.manager",
    "NapariStreamVisualizer": "platestream.viewer.manager",
    "ImageItem": "platestream.layering",
    "NapariStreamingConfig": "platestream.config",
    "StreamingConfig": "platestream.config",
    "PipelineConfig": "platestream.config",
    "Pipeline": "platestream.pipeline",
    "FunctionStep": "platestream.pipeline",
    "FunctionCall": "platestream.pipeline",
    "run_pipeline": "platestream._run",
    "FileManager": "platestream.pipeline",
    "RunOptions": "platestream.pipeline",
    "load_pipeline_file": "platestream.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'platestream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "FileManager",
    "FunctionCall",
    "FunctionStep",
    "ImageItem",
    "NapariStreamVisualizer",
    "NapariStreamingConfig",
    "Pipeline",
    "PipelineConfig",
    "RunOptions",
    "StreamingConfig",
    "__version__",
    "load_pipeline_file",
    "open_run",
    "open_viewer",
    "run_pipeline",
]
