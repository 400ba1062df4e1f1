"""The viewer's layer model, Qt-free: received images -> plans -> arrays -> napari calls.

* ``Plans`` (``_plans``): one ``platestream.layering`` plan per display config.
* ``LayerStore`` (``_layer_store``): the arrays behind the layers, written plane by plane
  (``_growable``: arrays that grow without copying).
* ``NapariApplier`` (``_napari_apply``): the only code that calls napari's layer API;
  duck-typed, so it runs against a ``ViewerModel`` in tests.
* ``layers_report`` (``_layers_report``): the ``layers`` request's answer.

Imports no Qt (checked by import-linter).
"""

from ._layers_report import layers_report
from ._napari_apply import NapariApplier
from ._plans import Plans, display_key

__all__ = [
    "NapariApplier",
    "Plans",
    "display_key",
    "layers_report",
]
