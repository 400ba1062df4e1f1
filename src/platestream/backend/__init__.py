"""platestream.backend: the transport and its producer side.

Producer: ``NapariStreamingBackend`` (registered as ``napari_stream``) streams images with
``save``/``save_batch`` through per-viewer links (``link``): shared-memory pools
(``pool``, ``shm``) for local viewers, inline frames for remote ones, CURVE for anything
beyond loopback (``security``).

Viewer: ``Receiver`` binds the data and control ports, validates, copies out and queues
``ReceivedBatch`` objects for the display; it imports no Qt (the viewer package wraps it).
"""

from typing import TYPE_CHECKING, Any

from .control_client import ControlClient, ControlTimeout, Reply, request_once
from .delivery import SaveReport
from .link import Link, LinkOptions, LinkState
from .security import CurveClient, CurveServer, InsecureBindError, KeyPair, KeyStore
from .streaming import (
    NapariStreamingBackend,
    StreamingBackend,
    get_backend,
    registered_backends,
)

if TYPE_CHECKING:
    from .control import DEFER, ControlReply, ControlRequest, Deferred, Handler
    from .display_queue import ReceivedBatch, ReceivedImage
    from .receiver import Receiver, ReceiverOptions

# The viewer's side is imported on first use: a pipeline worker that only streams does
# not pay for it (every worker process imports this package).
_VIEWER_SIDE = {
    "DEFER": "control",
    "ControlReply": "control",
    "ControlRequest": "control",
    "Deferred": "control",
    "Handler": "control",
    "ReceivedBatch": "display_queue",
    "ReceivedImage": "display_queue",
    "Receiver": "receiver",
    "ReceiverOptions": "receiver",
}


def __getattr__(name: str) -> Any:
    module = _VIEWER_SIDE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFER",
    "ControlClient",
    "ControlReply",
    "ControlRequest",
    "ControlTimeout",
    "CurveClient",
    "CurveServer",
    "Deferred",
    "Handler",
    "InsecureBindError",
    "KeyPair",
    "KeyStore",
    "Link",
    "LinkOptions",
    "LinkState",
    "NapariStreamingBackend",
    "ReceivedBatch",
    "ReceivedImage",
    "Receiver",
    "ReceiverOptions",
    "Reply",
    "SaveReport",
    "StreamingBackend",
    "get_backend",
    "registered_backends",
    "request_once",
]
