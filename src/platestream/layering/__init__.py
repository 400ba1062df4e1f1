"""platestream.layering: filename -> component metadata, and the pure layer-planning engine.

A functional core: frozen values in, frozen values out; no clocks, no I/O, no Qt.
"""

from .items import ComponentValue, ImageItem, LayerKind

__all__ = ["ComponentValue", "ImageItem", "LayerKind"]
