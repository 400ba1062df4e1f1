"""The ``layers`` request's answer: what napari shows, read from its layers (Qt-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from platestream.schemas import LayerInfo, LayersReport


def layer_info(layer: Any, streamed: bool) -> LayerInfo:
    data = layer.data
    if isinstance(data, list):  # shapes: one array per shape
        shape: tuple[int, ...] = (len(data),)
        dtype = ""
    else:
        shape = tuple(int(n) for n in np.shape(data))
        dtype = str(getattr(data, "dtype", ""))
    colormap = getattr(layer, "colormap", None)
    limits = getattr(layer, "contrast_limits", None)
    return LayerInfo(
        name=str(layer.name),
        kind=type(layer).__name__.lower(),
        shape=shape,
        dtype=dtype,
        axis_labels=tuple(str(label) for label in layer.axis_labels),
        visible=bool(layer.visible),
        colormap=str(getattr(colormap, "name", "") or ""),
        contrast_limits=tuple(float(v) for v in limits) if limits is not None else (),
        streamed=streamed,
    )


def layers_report(viewer: Any, streamed: dict[str, Any], caption: str) -> LayersReport:
    ours = {id(layer) for layer in streamed.values()}
    return LayersReport(
        layers=tuple(layer_info(layer, id(layer) in ours) for layer in viewer.layers),
        axis_labels=tuple(str(label) for label in viewer.dims.axis_labels),
        current_step=tuple(int(step) for step in viewer.dims.current_step),
        caption=caption,
    )
