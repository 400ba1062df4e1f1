"""napari's reader of platestream run stores: ``napari RUN_DIR`` (or File > Open) shows a
run with the layers the viewer showed it in - the viewer's own reopen: the layer model
places the run's stored planes, and napari gets each layer's planes as the run store's
lazy, disk-backed arrays (a plane is read when napari shows it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def is_run(path: Path) -> bool:
    """A platestream run store: a Zarr v3 group whose attributes say so."""
    marker = path / "zarr.json"
    if not marker.is_file():
        return False
    try:
        attributes = json.loads(marker.read_text(encoding="utf-8")).get("attributes", {})
    except (OSError, ValueError):
        return False
    return isinstance(attributes, dict) and isinstance(attributes.get("platestream"), dict)


def get_reader(path: str | list[str]) -> Any:
    """napari's hook: a reader for a run store's folder, None for anything else."""
    if isinstance(path, list) or not is_run(Path(path)):
        return None
    return read_run


def read_run(path: str | list[str]) -> list[tuple[Any, dict[str, Any], str]]:
    """The run's layers as napari layer data (names, colormaps, contrast as the viewer
    had them)."""
    from platestream.layering import LayerKind

    from ..layer_model import LayerStore, Plans, open_source, plates_to_show

    folder = Path(path[0] if isinstance(path, list) else path)
    source = open_source("disk", "", folder.name, run=str(folder))
    plans = Plans(LayerStore(source))
    for plate in plates_to_show(source):  # type: ignore[arg-type]
        plans.declare(plate.layout)
        plans.add(plate.display, plate.first)
        plans.add(plate.display, plate.images(plate.rest))
    layers = []
    for name, stored in plans.store.layers.items():
        kwargs: dict[str, Any] = {"name": name, "metadata": {"platestream": True}}
        if stored.array is not None:
            kwargs["multiscale"] = stored.multiscale
        if stored.kind is LayerKind.IMAGE:
            kwargs.update(colormap=stored.colormap or "gray", blending="additive")
            if stored.contrast is not None:
                kwargs["contrast_limits"] = stored.contrast
        if stored.axis_labels:
            kwargs["axis_labels"] = stored.axis_labels
        layers.append((stored.napari_data(), kwargs, stored.kind.value))
    return layers
