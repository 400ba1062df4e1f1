"""platestream.viewer: the napari viewer process, its layer model and its process manager.

Split by Qt-ness, so that "no Qt here" is a rule on packages (import-linter checks it):

* ``platestream.viewer.process`` - the viewer process itself (Qt, napari):
  ``python -m platestream.viewer.process``;
* ``platestream.viewer.layer_model`` - plans, the layer store and the napari calls (no Qt);
* ``platestream.viewer.manager`` - start, reuse, find and stop viewers (no Qt; pipelines
  and the CLI use it).
"""
