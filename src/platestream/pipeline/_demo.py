"""The demo: a synthetic plate and a 3-step pipeline streamed into napari.

``demo_pipeline`` builds in Python exactly what ``examples/demo.toml`` says in TOML; a test
checks that both resolve to identical configs.
"""

from __future__ import annotations

from platestream.config import FrozenMap, NapariStreamingConfig, PipelineConfig

from . import _functions as functions
from ._model import FunctionCall, FunctionStep, Pipeline
from ._synthetic import SyntheticPlate

DEMO_PLATE = SyntheticPlate(name="demo_plate", rows=4, columns=6, sites=4, size=512)


def demo_pipeline(port: int = 5555, workers: int = 0) -> Pipeline:
    streaming = NapariStreamingConfig(
        enabled=True,
        persistent=True,
        napari_port=port,
        delivery="lossless",  # a demo should show every image
        channel_colormaps=FrozenMap({"DAPI": "blue", "GFP": "green", "RFP": "magenta"}),
    )
    return Pipeline(
        name="demo",
        steps=(
            FunctionStep(
                "background",
                (FunctionCall.of(functions.subtract_background, name="rolling_min", radius=15),),
            ),
            FunctionStep(
                "blur",
                (FunctionCall.of(functions.gaussian_blur, sigma=2.0),),
                config=PipelineConfig(napari_streaming=NapariStreamingConfig(colormap="viridis")),
            ),
            FunctionStep(
                "nuclei",
                (
                    FunctionCall.of(
                        functions.threshold_labels, name="otsu", output="labels", min_size=30
                    ),
                ),
            ),
        ),
        config=PipelineConfig(napari_streaming=streaming),
        workers=workers,
    )
