"""platestream: stream pipeline images live into persistent napari viewers.

Importing this package never imports Qt; the viewer process is the only part that does.
"""

__version__ = "0.1.0"
