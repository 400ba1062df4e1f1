"""A receiver without napari: ``python -m platestream.backend.bare_receiver --port 0``.

A stand-in viewer for benchmarks, tests and debugging. It prints one JSON line when it
listens (``{"event": "ready", "data_port": ..., ...}``); with ``--echo``, one line per
image received (its component values, extra values and a CRC-32 of its pixels) and one
per drop as it is counted (``{"event": "dropped", "reason": ..., "images": n}``, said
before the producer hears of it, so a viewer killed with SIGKILL leaves its account); and
``{"event": "stopped"}`` with the final counters when it ends (a ``shutdown`` request,
SIGTERM or SIGINT). Like the napari viewer it receives zero-copy (pixels lent from the
producers' pools, released once used); ``--copy`` copies them out instead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from platestream.schemas import DropReason, unstructure

from ._display_queue import ReceivedBatch
from ._receiver import Receiver, ReceiverOptions
from ._security import KeyStore
from .shm import keep_large_buffers


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _consume(receiver: Receiver, echo: bool, hold: threading.Event) -> None:
    while True:
        stopping = receiver.stopping  # read first: after a stop, one last take
        if hold.is_set() and not stopping:  # a display that stopped taking images
            receiver.wait_stopped(0.1)
            continue
        if not stopping and not receiver.wait(0.5):
            continue
        batches = receiver.take()
        _show(receiver, batches, echo)
        if stopping:
            return


def _show(receiver: Receiver, batches: list[ReceivedBatch], echo: bool) -> None:
    if not echo:
        # Released at once: leased slots go back to their producers, copied buffers to the
        # receiver's recycler while still warm in cache.
        for batch in batches:
            batch.release()
        return
    for batch in batches:
        with batch:
            for image in batch.images:
                crc = zlib.crc32(image.data.data)
                if not image.intact():  # rewritten while read (live mode): counted
                    receiver.count_dropped(DropReason.OVERWRITTEN, 1, batch.producer)
                    continue
                _emit(
                    "image",
                    producer=batch.producer,
                    seq=batch.seq,
                    components=dict(image.item.components),
                    extra=dict(image.item.extra),
                    step=image.item.step_name,
                    shape=list(image.data.shape),
                    crc=crc,
                )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platestream.backend.bare_receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5555, help="data port; 0 picks a free pair")
    parser.add_argument("--max-message-bytes", type=int, default=ReceiverOptions.max_message_bytes)
    parser.add_argument("--queue-batches", type=int, default=ReceiverOptions.queue_batches)
    parser.add_argument("--keys", type=Path, help="key directory: require CURVE")
    parser.add_argument("--echo", action="store_true", help="print a line per image")
    parser.add_argument("--hold", action="store_true", help="queue images but never take them")
    parser.add_argument(
        "--copy", action="store_true", help="copy pixels out of shared memory (no leases)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    curve = KeyStore(args.keys).server() if args.keys else None
    options = ReceiverOptions(
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_bytes,
        queue_batches=args.queue_batches,
        curve=curve,
        zero_copy=not args.copy,
    )
    keep_large_buffers()  # inline frames land in reused heap memory, not fresh mmaps
    receiver = Receiver(options)
    if args.echo:  # every image's fate is said: shown (an image line) or dropped, and why
        receiver.counters.on_drop = lambda reason, images: _emit(
            "dropped", reason=reason.value, images=images
        )
    hold = threading.Event()
    if args.hold:
        hold.set()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: receiver.stop())
    receiver.start()
    _emit(
        "ready",
        data_port=receiver.data_port,
        control_port=receiver.control_port,
        viewer_id=receiver.viewer_id,
        pid=os.getpid(),
    )
    consumer = threading.Thread(target=_consume, args=(receiver, args.echo, hold), daemon=True)
    consumer.start()
    while not receiver.wait_stopped(0.2):
        pass  # wake now and then: signal handlers run on the main thread
    consumer.join(10)  # its last lines (it takes what is still queued) come before "stopped"
    report = unstructure(receiver.stats())
    receiver.close()
    _emit("stopped", status=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
