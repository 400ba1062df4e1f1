"""The receiver's own control requests: handshake, pools, acknowledgements, status, and the
built-in halves of ``clear`` and ``shutdown``.

Two requests are held rather than answered at once. A ``ping`` with a token waits until
that token arrives as a ``probe`` on the data port - the proof that the producer's data
path is live - or until its ``wait_s`` passes. A ``sync`` waits until its producer has more
batches done than it knows of - the acknowledgement - or until its ``wait_s`` passes, which
makes it the producer's heartbeat too.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from platestream.schemas import (
    PROTOCOL_VERSION,
    Attach,
    Attached,
    Clear,
    Detach,
    Error,
    ErrorCode,
    Message,
    Ok,
    Ping,
    Pong,
    Shutdown,
    StatusReport,
    Sync,
    Synced,
    ViewerState,
)

from .control import DEFER, ControlReply, ControlRequest, Deferred, Handler
from .security import is_loopback
from .shm import SegmentError

if TYPE_CHECKING:
    from .receiver import Receiver

log = logging.getLogger(__name__)
RECENT_PROBES = 256
HOSTNAME = socket.gethostname()


def resident_bytes() -> int:
    """This process's resident memory (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class BuiltinHandlers:
    wrapped = frozenset({"clear", "shutdown"})

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.user_handlers: dict[str, Handler] = {}
        self._probes: dict[str, tuple[ControlRequest, float]] = {}  # token -> (ping, deadline)
        self._recent: OrderedDict[str, None] = OrderedDict()  # probes that came first
        self._syncs: dict[str, list[tuple[ControlRequest, int, float]]] = {}
        router = receiver.router
        router.register("ping", self.ping)
        router.register("attach", self.attach)
        router.register("detach", self.detach)
        router.register("sync", self.sync)
        router.register("status", self.status)
        router.register("clear", self.clear)
        router.register("shutdown", self.shutdown)

    # ------------------------------------------------------------- handshake

    def pong(self, probe_seen: bool) -> Pong:
        r = self.receiver
        return Pong(
            protocol=PROTOCOL_VERSION,
            viewer_id=r.viewer_id,
            pid=os.getpid(),
            host=HOSTNAME,
            data_port=r.data_port,
            control_port=r.control_port,
            started_at=r.started_at,
            probe_seen=probe_seen,
            state=self.state(),
        )

    def ping(self, request: ControlRequest) -> Message | Deferred:
        assert isinstance(request.message, Ping)
        token, wait_s = request.message.token, request.message.wait_s
        if not token:
            return self.pong(False)
        if token in self._recent:
            del self._recent[token]
            return self.pong(True)
        if wait_s <= 0 or self._pending() >= self.receiver.options.max_pending:
            return self.pong(False)
        self._probes[token] = (request, time.monotonic() + wait_s)
        return DEFER

    def probe_arrived(self, token: str) -> None:
        held = self._probes.pop(token, None)
        if held is not None:
            held[0].reply(self.pong(True))
            return
        # The probe overtook its ping (the data path was faster): remember it briefly.
        self._recent[token] = None
        while len(self._recent) > RECENT_PROBES:
            self._recent.popitem(last=False)

    # ---------------------------------------------------------------- pools

    def attach(self, request: ControlRequest) -> Message:
        message = request.message
        assert isinstance(message, Attach)
        if request.peer and not is_loopback(request.peer):
            return Error(code=ErrorCode.REFUSED, message="shared memory is for local producers")
        try:
            self.receiver.ingest.attach(message.producer, message.pid, message.pool)
        except (SegmentError, OSError) as err:
            log.info("refused pool %s of %s: %s", message.pool.id, message.producer, err)
            return Error(code=ErrorCode.REFUSED, message=str(err)[:4000])
        return Attached(pool=message.pool.id)

    def detach(self, request: ControlRequest) -> Message:
        message = request.message
        assert isinstance(message, Detach)
        self.receiver.ingest.release(message.producer)
        for held, _after, _deadline in self._syncs.pop(message.producer, []):
            held.reply(self.synced(message.producer))
        return Ok()

    # ----------------------------------------------------------------- acks

    def synced(self, producer: str) -> Synced:
        counters = self.receiver.counters
        with counters.lock:
            state = counters.producers.get(producer)
            done = state.done_seq if state else 0
            dropped = {r.value: n for r, n in sorted(state.dropped.items())} if state else {}
        return Synced(viewer_id=self.receiver.viewer_id, done_seq=done, dropped=dropped)

    def sync(self, request: ControlRequest) -> Message | Deferred:
        message = request.message
        assert isinstance(message, Sync)
        reply = self.synced(message.producer)
        if reply.done_seq > message.after or message.wait_s <= 0:
            return reply
        if self._pending() >= self.receiver.options.max_pending:
            return reply
        deadline = time.monotonic() + message.wait_s
        self._syncs.setdefault(message.producer, []).append((request, message.after, deadline))
        return DEFER

    def batch_done(self, producer: str) -> None:
        """Batches of ``producer`` were taken in or given back: answer its waiting sync."""
        self.receiver.ingest.update_done(producer)
        held = self._syncs.get(producer)
        if not held:
            return
        reply = self.synced(producer)
        waiting = [entry for entry in held if entry[1] >= reply.done_seq]
        for request, after, _deadline in held:
            if after < reply.done_seq:
                request.reply(reply)
        self._syncs[producer] = waiting

    # -------------------------------------------------------------- timing

    def _pending(self) -> int:
        return len(self._probes) + sum(len(held) for held in self._syncs.values())

    def next_deadline(self) -> float:
        deadlines = [d for _, d in self._probes.values()]
        deadlines += [d for held in self._syncs.values() for _, _, d in held]
        return min(deadlines, default=time.monotonic() + 3600.0)

    def expire(self) -> None:
        """Answer held requests whose wait is over."""
        now = time.monotonic()
        for token, (request, deadline) in list(self._probes.items()):
            if deadline <= now:
                del self._probes[token]
                request.reply(self.pong(False))
        for producer, held in list(self._syncs.items()):
            due = [entry for entry in held if entry[2] <= now]
            if due:
                reply = self.synced(producer)
                for request, _after, _deadline in due:
                    request.reply(reply)
                self._syncs[producer] = [entry for entry in held if entry[2] > now]

    # --------------------------------------------------------------- status

    def state(self) -> ViewerState:
        r = self.receiver
        with r.counters.lock:
            producers, received = len(r.counters.producers), r.counters.images
        return ViewerState(
            ready=r.ready,
            producers=producers,
            received=received,
            dropped=r.counters.total_dropped(),
            queue_depth=len(r.queue),
            queue_bytes=r.queue.nbytes,
            memory_bytes=resident_bytes(),
            display=r.display_state(),
        )

    def status_report(self) -> StatusReport:
        r = self.receiver
        with r.counters.lock:
            batches, images, nbytes = r.counters.batches, r.counters.images, r.counters.bytes
        return StatusReport(
            viewer_id=r.viewer_id,
            state=self.state(),
            batches=batches,
            images=images,
            bytes=nbytes,
            dropped=r.counters.dropped_by_reason(),
            auth_denied=r.zap.denied if r.zap is not None else 0,
            pools=len(r.ingest.pools),
            producers=r.counters.producer_reports(),
        )

    def status(self, request: ControlRequest) -> Message:
        return self.status_report()

    # ---------------------------------------------- clear and shutdown (+ viewer's half)

    def _user(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        handler = self.user_handlers.get(request.message.TYPE)
        return Ok() if handler is None else handler(request)

    def clear(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        assert isinstance(request.message, Clear)
        self.receiver.queue.clear()  # deliberate, so not counted as drops
        return self._user(request)

    def shutdown(self, request: ControlRequest) -> Message | ControlReply | Deferred:
        message = request.message
        assert isinstance(message, Shutdown)
        if message.viewer_id and message.viewer_id != self.receiver.viewer_id:
            return Error(
                code=ErrorCode.WRONG_VIEWER,
                message=f"this is viewer {self.receiver.viewer_id}, not {message.viewer_id}",
            )
        result = self._user(request)
        self.receiver.stop()  # the loop sends the reply before it ends
        return result
