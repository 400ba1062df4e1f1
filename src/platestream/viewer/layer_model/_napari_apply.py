"""The store's changes -> napari calls: the only code that touches napari layers.

Qt-free and duck-typed (``viewer`` is a ``napari.Viewer`` or a ``ViewerModel``), so it is
tested against a spec'd fake and a real ``ViewerModel`` without a GUI. What napari is told:

* a layer is added **once** (``add_image``/``add_labels``/``add_points``/``add_shapes``);
* planes written in place cost a ``layer.refresh()`` - and only when a written plane is
  the one on screen: a plate streaming in while the user looks at one well costs napari
  nothing (napari reads the planes when the sliders move there);
* ``layer.data`` is assigned only when the array object changed (a new well, axis, plane
  shape or dtype) - and for points, which are rebuilt from their planes (napari takes an
  array of points at once, fast); shapes are given to napari a bounded number per display
  frame (``ShapesFeed``: napari builds every polygon in Python, ~0.3 ms each, so a plate of
  polygons in one call would block the GUI for seconds), only those not given yet, and a
  rewritten plane's old polygons are taken out;
* contrast limits are set at first show, from the first plane's range, and never again;
  colormap, opacity, blending (additive: a step's channels make a composite; labels as
  outlines) and layer order are set at creation at most, and visibility once more: the
  newest step is the one shown (images and what lies over them counted apart), so when
  a newer step's first layer appears the earlier steps' layers are hidden (a click away).
  Whatever the user changes afterwards stays. A layer the user deleted stays deleted
  (until ``clear``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from platestream.layering import LayerKind

from ._layer_store import Changes, Index, StoredLayer, indexed
from ._plans import Plans

PLACEHOLDER_CONTRAST = (0.0, 1.0)  # until the first plane arrives
MARK = "platestream"  # layer.metadata key: the layer is fed by the stream
MAX_CREATE_PER_FLUSH = 8  # napari layers created per display frame; the rest wait
SHAPES_PER_FLUSH = 256  # polygons given to napari per display frame; the rest wait
SHAPE_FACE, SHAPE_EDGE = "transparent", "yellow"
LABELS_CONTOUR = 2  # labels are drawn as outlines this many pixels wide
LABELS_OPACITY = 0.7


def _sort_of(stored: StoredLayer) -> str:
    """Images, or what is drawn over them (labels, points, shapes)."""
    return "image" if stored.kind is LayerKind.IMAGE else "overlay"


def _step_index(stored: StoredLayer) -> int | None:
    """The step a layer shows (its sliced ``step`` value), None if it spans steps."""
    value = stored.components.get("step")
    return int(value[0]) if isinstance(value, tuple) and value else None


class ShapesFeed:
    """Gives one napari shapes layer the polygons of its stored planes, at most ``budget``
    per ``step`` (one display frame), in index order. It remembers which plane's polygons
    napari holds, and where: a plane rewritten or moved (an axis value inserted before it)
    has its old polygons taken out and its new ones given again; a layer whose polygons
    the user changed, or whose dimensions changed, is given everything again."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.fed: dict[Index, Any] = {}  # index -> the payload napari holds, in its order
        self.waiting = 0  # polygons of the stored planes not given to napari yet

    def step(self, stored: StoredLayer, budget: int = SHAPES_PER_FLUSH) -> None:
        planes = stored.planes
        layer = self.layer
        given = sum(len(payload) for payload in self.fed.values())
        reset = len(layer.data) != given or int(layer.ndim) != len(stored.axes) + 2
        if not reset:
            reset = self._take_out_stale(planes, given)
        if reset:
            self.fed.clear()
        batch: list[Any] = []
        waiting = 0
        for index in sorted(planes):
            if index in self.fed:
                continue
            payload = planes[index]
            if waiting or (batch and len(batch) + len(payload) > budget):
                waiting += len(payload)
                continue
            batch += [indexed(index, polygon) for polygon in payload]
            self.fed[index] = payload
        self.waiting = waiting
        if reset:  # also sets the layer's dimensions
            layer.data = [(polygon, "polygon") for polygon in batch]
        elif batch:
            layer.add(batch, shape_type="polygon", face_color=SHAPE_FACE, edge_color=SHAPE_EDGE)

    def _take_out_stale(self, planes: dict[Index, Any], given: int) -> bool:
        """Remove the polygons of planes that changed or went; True if most did (then the
        layer is given everything again instead)."""
        stale: list[int] = []
        offset = 0
        gone: list[Index] = []
        for index, payload in self.fed.items():
            if planes.get(index) is not payload:
                stale.extend(range(offset, offset + len(payload)))
                gone.append(index)
            offset += len(payload)
        if not stale:
            return False
        if 2 * len(stale) > given:
            return True
        self.layer.selected_data = set(stale)
        self.layer.remove_selected()
        for index in gone:
            del self.fed[index]
        return False


def _no_check() -> None:
    return None


class NapariApplier:
    def __init__(
        self, viewer: Any, plans: Plans, check_thread: Callable[[], None] = _no_check
    ) -> None:
        self.viewer = viewer
        self.plans = plans
        self.check_thread = check_thread  # raises unless on the GUI thread (Qt side)
        self.layers: dict[str, Any] = {}  # napari name -> the napari layer we created
        self._newest_step: dict[str, int] = {}  # by sort: the step shown (_show_newest_step)
        self.feeds: dict[str, ShapesFeed] = {}  # shapes layers: what napari holds of them
        self._contrast_pending: set[str] = set()
        self._to_create: list[str] = []  # planned layers not created yet, oldest first
        self.refreshed = 0  # layer refreshes asked of napari (written planes on screen)
        self.reassigned = 0  # layer.data assignments (a layer grew or changed shape)

    @property
    def pending(self) -> int:
        """Layers planned but not created yet: at most ``MAX_CREATE_PER_FLUSH`` are created
        per flush (``add_image`` costs hundreds of ms under software GL), so a message that
        makes 256 layers does not block the GUI - and signals - for minutes."""
        return len(self._to_create)

    @property
    def shapes_pending(self) -> int:
        """Polygons stored but not given to napari yet (at most ``SHAPES_PER_FLUSH`` are
        given per flush)."""
        return sum(feed.waiting for feed in self.feeds.values())

    @property
    def busy(self) -> bool:
        """True while a later flush has work left (layers to create, polygons to give)."""
        return bool(self._to_create) or self.shapes_pending > 0

    def flush(self) -> Changes:
        """Tell napari what changed since the last flush; returns those changes (``created``:
        the layers created now; later ones follow in the next flushes)."""
        changes = self.plans.store.take_changes()
        if not changes and not self.busy:
            return changes
        self.check_thread()
        for name in changes.removed:
            self._remove(name)
            if name in self._to_create:
                self._to_create.remove(name)
        self._to_create += changes.created
        stored = self.plans.store.layers
        new: set[str] = set()
        while self._to_create and len(new) < MAX_CREATE_PER_FLUSH:
            name = self._to_create.pop(0)
            if name in stored:
                self._create(name, stored[name])
                self._put_in_order(name)
                new.add(name)
        changes.created = [name for name in changes.created if name in new] + sorted(
            new - set(changes.created)
        )
        waiting = set(self._to_create)  # created later, with the data they have by then
        for name in changes.reshaped - new - waiting:
            if name in self.feeds:
                continue  # fed below
            if name in self.layers:
                self.layers[name].data = self._data(stored[name])
                self.reassigned += 1
        for name, feed in self.feeds.items():
            if name in stored and (feed.waiting or name in changes.reshaped or name in new):
                feed.step(stored[name])
        for name in changes.written - new - changes.reshaped - waiting:
            if name in self.layers and self._on_screen(name, changes.written_at.get(name)):
                self.layers[name].refresh()
                self.refreshed += 1
        self._set_first_contrast()
        if new or changes.relabeled or changes.reshaped:
            self._label_axes(new | changes.relabeled | changes.reshaped)
        return changes

    def clear(self) -> None:
        """Remove every layer the stream created (and forget the plans)."""
        self.check_thread()
        for name in self.plans.clear():
            self._remove(name)
        for name in list(self.layers):
            self._remove(name)
        self._contrast_pending.clear()
        self._to_create.clear()
        self.feeds.clear()
        self._newest_step.clear()

    # ------------------------------------------------------------------ helpers

    def _remove(self, name: str) -> None:
        layer = self.layers.pop(name, None)
        self.feeds.pop(name, None)
        self._contrast_pending.discard(name)
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    @staticmethod
    def _data(stored: StoredLayer) -> Any:
        return stored.napari_data()

    def _on_screen(self, name: str, indices: set[tuple[int, ...]] | None) -> bool:
        """Is any of these stacked indices the slice napari shows of layer ``name``?"""
        stored = self.plans.store.layers.get(name)
        if not indices or stored is None or stored.array is None:
            return True
        dims = self.viewer.dims
        point = tuple(dims.current_step)
        hidden = set(dims.not_displayed)
        offset = len(point) - (len(stored.axes) + stored.plane_ndim)
        for index in indices:
            if all(
                offset + d not in hidden or point[offset + d] == i
                for d, i in enumerate(index)
                if 0 <= offset + d < len(point)
            ):
                return True
        return False

    def _create(self, name: str, stored: StoredLayer) -> None:
        common: dict[str, Any] = {"name": name, "metadata": {MARK: True}}
        data = self._data(stored) if stored.kind is not LayerKind.SHAPES else None
        if stored.array is not None:
            common["multiscale"] = stored.multiscale
        if stored.kind is LayerKind.IMAGE:
            assert stored.array is not None
            contrast = stored.contrast or PLACEHOLDER_CONTRAST
            layer = self.viewer.add_image(
                data,
                colormap=stored.colormap or "gray",
                contrast_limits=contrast,
                blending="additive",  # a step's channels make one composite
                **common,
            )
            layer.contrast_limits_range = _slider_range(stored.array.dtype, contrast)
            if stored.contrast is None:
                self._contrast_pending.add(name)
        elif stored.kind is LayerKind.LABELS:
            # Outlines over the step's image, not a fill that hides it.
            layer = self.viewer.add_labels(data, opacity=LABELS_OPACITY, **common)
            layer.contour = LABELS_CONTOUR
        elif stored.kind is LayerKind.POINTS:
            layer = self.viewer.add_points(data, ndim=len(stored.axes) + 2, **common)
        else:
            layer = self.viewer.add_shapes(
                None,
                ndim=len(stored.axes) + 2,
                face_color=SHAPE_FACE,
                edge_color=SHAPE_EDGE,
                **common,
            )
            self.feeds[name] = ShapesFeed(layer)  # its polygons come a few per frame
        self.layers[name] = layer
        self._show_newest_step(name, stored)

    def _show_newest_step(self, name: str, stored: StoredLayer) -> None:
        """One step is shown at a time, the newest - counted apart for images and for
        what is drawn over them (labels, points, shapes), so a segmentation step's
        outlines lie over the newest image step. When the first layer of a step after
        every one shown so far appears, the streamed layers of earlier steps of its sort
        are hidden (a click on their eye shows them again; they are not hidden again
        until a still newer step comes). A layer of an older step arriving later starts
        hidden."""
        step = _step_index(stored)
        if step is None:
            return
        sort = _sort_of(stored)
        newest = self._newest_step.get(sort, -1)
        if step < newest:
            self.layers[name].visible = False
            return
        if step == newest:
            return
        self._newest_step[sort] = step
        layers = self.plans.store.layers
        for other, layer in self.layers.items():
            if other not in layers or _sort_of(layers[other]) != sort:
                continue
            older = _step_index(layers[other])
            if older is not None and older < step:
                layer.visible = False

    def _put_in_order(self, name: str) -> None:
        """Move a new layer below the first streamed layer that sorts after it
        (``Plans.layer_order``: steps in order, then channels...), so napari's list has
        one order whatever order images came in. Only the new layer moves: an order the
        user set among the others stays."""
        layers = self.viewer.layers
        stored = self.plans.store.layers
        new = self.layers[name]
        key = self.plans.layer_order(stored[name])
        for index, layer in enumerate(layers):
            other = getattr(layer, "name", None)
            if other == name or other not in self.layers or self.layers[other] is not layer:
                continue
            if other in stored and self.plans.layer_order(stored[other]) > key:
                current = layers.index(new)
                if current > index:
                    layers.move(current, index)
                return

    def _set_first_contrast(self) -> None:
        for name in list(self._contrast_pending):
            stored, layer = self.plans.store.layers.get(name), self.layers.get(name)
            if stored is None or layer is None or stored.contrast is None:
                continue
            self._contrast_pending.discard(name)
            if tuple(layer.contrast_limits) != PLACEHOLDER_CONTRAST:
                continue  # the user set limits before the first image came: keep them
            low, high = stored.contrast
            current = layer.contrast_limits_range
            layer.contrast_limits_range = (min(low, current[0]), max(high, current[1]))
            layer.contrast_limits = stored.contrast

    def _label_axes(self, names: set[str]) -> None:
        for name in names:
            stored, layer = self.plans.store.layers.get(name), self.layers.get(name)
            if stored is not None and layer is not None:
                layer.axis_labels = stored.axis_labels
        stored_layers = self.plans.store.layers
        longest = max(
            (stored_layers[n].axis_labels for n in self.layers if n in stored_layers),
            key=len,
            default=(),
        )
        dims = self.viewer.dims
        ndim = int(dims.ndim)
        if len(longest) >= ndim:
            labels = longest[-ndim:] if ndim else longest
        else:  # other layers have more dimensions: keep napari's labels for those
            labels = (*tuple(dims.axis_labels)[: ndim - len(longest)], *longest)
        if tuple(dims.axis_labels) != labels:
            dims.axis_labels = labels


def _slider_range(dtype: Any, contrast: tuple[float, float]) -> tuple[float, float]:
    """The contrast slider's range: the dtype's for small integer types, so the user can
    widen the limits beyond the first plane's range; the limits themselves otherwise."""
    kind = np.dtype(dtype)
    if kind.kind in "ui" and kind.itemsize <= 2:
        info = np.iinfo(kind)
        return (min(float(info.min), contrast[0]), max(float(info.max), contrast[1]))
    if kind.kind == "b":
        return (0.0, 1.0)
    return contrast
