"""platestream.backend: the transport and its producer side.

Producer: ``NapariStreamingBackend`` (registered as ``napari_stream``) streams images with
``save``/``save_batch`` through one ``Link`` per viewer (``_link``, shared by every backend
of a process through ``_link_registry``): shared-memory pools (``shm``) for local viewers,
inline frames for remote ones, CURVE for anything beyond loopback (``_security``).

Viewer: ``Receiver`` (``_receiver``) binds the data and control ports, validates, copies out
or lends pixels and queues ``ReceivedBatch`` objects for the display; it imports no Qt (the
viewer package wraps it). ``python -m platestream.backend.bare_receiver`` runs one without
napari, for benchmarks, tests and debugging.
"""

from typing import TYPE_CHECKING, Any

from ._control_client import ControlClient, ControlTimeout, Reply, request_once
from ._link import Link, LinkOptions, LinkState, OutgoingImage, SaveReport
from ._pids import pid_alive, pidfd_open
from ._security import (
    CurveClient,
    CurveServer,
    InsecureBindError,
    KeyPair,
    KeyPermissionError,
    KeyStore,
    credentials_for,
    is_local,
    is_loopback,
    load_public_key,
)
from ._streaming import (
    NapariStreamingBackend,
    StreamingBackend,
    Target,
    checked_layout,
    get_backend,
    registered_backends,
    report_failed,
)

if TYPE_CHECKING:
    from ._control_router import DEFER, ControlReply, ControlRequest, Deferred, Handler
    from ._display_queue import ReceivedBatch, ReceivedImage
    from ._receiver import Receiver, ReceiverOptions, resident_bytes

# The viewer's side is imported on first use: a pipeline worker that only streams does
# not pay for it (every worker process imports this package).
_VIEWER_SIDE = {
    "DEFER": "_control_router",
    "ControlReply": "_control_router",
    "ControlRequest": "_control_router",
    "Deferred": "_control_router",
    "Handler": "_control_router",
    "ReceivedBatch": "_display_queue",
    "ReceivedImage": "_display_queue",
    "Receiver": "_receiver",
    "ReceiverOptions": "_receiver",
    "resident_bytes": "_receiver",
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
    "KeyPermissionError",
    "KeyStore",
    "Link",
    "LinkOptions",
    "LinkState",
    "NapariStreamingBackend",
    "OutgoingImage",
    "ReceivedBatch",
    "ReceivedImage",
    "Receiver",
    "ReceiverOptions",
    "Reply",
    "SaveReport",
    "StreamingBackend",
    "Target",
    "checked_layout",
    "credentials_for",
    "get_backend",
    "is_local",
    "is_loopback",
    "load_public_key",
    "pid_alive",
    "pidfd_open",
    "registered_backends",
    "report_failed",
    "request_once",
    "resident_bytes",
]
