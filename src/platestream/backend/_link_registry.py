"""Links shared by every backend of a process: one per viewer (host, data port).

Steps of a pipeline each may create a backend; they all stream through the same link (one
PUB socket, one pool, one handshake) to a given viewer. A link closes when its last user
releases it, and at interpreter exit. A child process created by ``fork`` never uses its
parent's links or ZeroMQ context (neither survives a fork); it opens its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

import zmq

from ._link import Link, LinkOptions
from ._security import CurveClient

log = logging.getLogger(__name__)

LinkKey = tuple[str, int]


class LinkRegistry:
    """Reference-counted links keyed by (host, port), one set per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._links: dict[LinkKey, Link] = {}
        self._users: dict[LinkKey, int] = {}

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            # Inherited from the parent: not ours to close, and unusable here.
            self._pid, self._context, self._links, self._users = os.getpid(), None, {}, {}

    def context(self) -> zmq.Context[zmq.Socket[bytes]]:
        with self._lock:
            self._after_fork()
            if self._context is None:
                self._context = zmq.Context()
            return self._context

    def acquire(
        self,
        host: str,
        port: int,
        *,
        shm: bool,
        pool_bytes: int,
        curve: CurveClient | None,
        options: LinkOptions,
    ) -> Link:
        """The link to host:port, created on first use; the first user's settings stick."""
        context = self.context()
        key = (host, port)
        with self._lock:
            link = self._links.get(key)
            if link is None:
                link = Link(
                    context,
                    host,
                    port,
                    shm=shm,
                    pool_bytes=pool_bytes,
                    curve=curve,
                    options=options,
                )
                self._links[key] = link
            self._users[key] = self._users.get(key, 0) + 1
            return link

    def release(self, link: Link) -> None:
        key = (link.host, link.port)
        with self._lock:
            if self._links.get(key) is not link:
                return
            self._users[key] -= 1
            if self._users[key] > 0:
                return
            del self._links[key], self._users[key]
        link.close()

    def close_all(self) -> None:
        with self._lock:
            self._after_fork()
            links = list(self._links.values())
            self._links.clear()
            self._users.clear()
            context, self._context = self._context, None
        closed = True
        for link in links:
            try:
                closed = link.close() and closed
            except Exception:  # at exit, one bad link must not stop the others closing
                log.exception("closing the link to %s:%s", link.host, link.port)
                closed = False
        if context is not None and closed:
            context.term()  # would block forever on a socket some stuck thread still holds


LINKS = LinkRegistry()
atexit.register(LINKS.close_all)
