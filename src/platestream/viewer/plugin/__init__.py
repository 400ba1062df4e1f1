"""platestream's napari plugin (npe2; manifest ``napari.yaml`` beside this file).

* ``ReceiverWidget`` - the dock widget "platestream receiver": while it listens, the
  user's own napari is a platestream viewer, built from the viewer package's own parts
  (``Receiver``, ``Pump``, layer model, status dock: ``viewer.process.assemble``);
* ``_reader.get_reader`` - ``napari RUN_DIR`` opens a run of the run store;
* its sample data, File > Open Sample > platestream, is ``platestream.pipeline``'s
  ``sample_plate`` (the demo's synthetic plate, small; plain layer data).
"""

from ._reader import get_reader
from ._widget import ReceiverWidget

__all__ = ["ReceiverWidget", "get_reader"]
