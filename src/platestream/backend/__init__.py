"""platestream.backend: the transport and its producer side.

Producer: ``NapariStreamingBackend`` (registered as ``napari_stream``) streams images with
``save``/``save_batch`` through per-viewer links (``link``): shared-memory pools
(``pool``, ``shm``) for local viewers, inline frames for remote ones, CURVE for anything
beyond loopback (``security``).

Viewer: ``Receiver`` binds the data and control ports, validates, copies out and queues
``ReceivedBatch`` objects for the display; it imports no Qt (the viewer package wraps it).
"""

from .control import DEFER, ControlReply, ControlRequest, Deferred, Handler
from .control_client import ControlClient, ControlTimeout, Reply, request_once
from .delivery import SaveReport
from .display_queue import ReceivedBatch, ReceivedImage
from .link import Link, LinkOptions, LinkState
from .receiver import Receiver, ReceiverOptions
from .security import CurveClient, CurveServer, InsecureBindError, KeyPair, KeyStore
from .streaming import (
    NapariStreamingBackend,
    StreamingBackend,
    get_backend,
    registered_backends,
)

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
