"""Small builders shared by the layering tests."""

from __future__ import annotations

import itertools
from typing import Any

from platestream.config import ConfigLayer, NapariStreamingConfig, resolve
from platestream.layering import ImageItem, LayerKind, Operation, WritePlane

_ids = itertools.count(1)


def config(**fields: Any) -> Any:
    """A resolved display config with ``fields`` set, e.g. ``config(well_mode="slice")``."""
    layer = ConfigLayer(NapariStreamingConfig(**fields), "test")
    return resolve(NapariStreamingConfig, [layer]).value


def image(
    step: tuple[int, str] = (1, "blur"),
    shape: tuple[int, ...] = (8, 8),
    dtype: str = "uint16",
    kind: LayerKind = LayerKind.IMAGE,
    item_id: int | None = None,
    **components: Any,
) -> ImageItem:
    """An item with a unique ``extra["id"]`` (its pixel value in a replay)."""
    return ImageItem(
        components={k: v for k, v in components.items() if v is not None},
        step_index=step[0],
        step_name=step[1],
        shape=shape,
        dtype=dtype,
        kind=kind,
        extra={"id": next(_ids) if item_id is None else item_id},
    )


def writes(ops: tuple[Operation, ...] | list[Operation]) -> list[WritePlane]:
    return [op for op in ops if isinstance(op, WritePlane)]


def of_type(ops: tuple[Operation, ...] | list[Operation], kind: type) -> list[Any]:
    return [op for op in ops if isinstance(op, kind)]
