"""Raw test sockets present this user's credentials, as every platestream client does."""

from __future__ import annotations

import zmq

from platestream.backend import KeyStore


def credentialed(sock: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
    """``sock`` with this user's CURVE client keys for a viewer on this machine (apply
    before ``connect``)."""
    KeyStore().local_client().apply(sock)
    return sock
