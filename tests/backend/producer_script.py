"""A producer process for tests: streams numbered images, reports progress as JSON lines.

Run with PYTHONPATH=src: ``python producer_script.py --port P [--count N] ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import zlib
from typing import Any

import numpy as np

from platestream.backend import LinkOptions, NapariStreamingBackend
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem
from platestream.schemas import PoolKind


def image(batch: int, index: int, size: int) -> np.ndarray:
    """The pixels of image ``index`` of batch ``batch``: unique, and cheap to recompute."""
    ramp = np.arange(size * size, dtype=np.uint32).reshape(size, size) % 251
    return (ramp + batch * 1000 + index).astype(np.uint16)


def crc(batch: int, index: int, size: int) -> int:
    return zlib.crc32(image(batch, index, size).tobytes())


def item(batch: int, index: int, size: int, planes: int) -> ImageItem:
    site = index % planes if planes else index
    return ImageItem(
        {"well": "A01", "site": site},
        1,
        "step",
        (size, size),
        "uint16",
        extra={"batch": batch, "index": index},
    )


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1, help="batches; 0 = until killed")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--planes", type=int, default=0, help="distinct planes (0 = all)")
    parser.add_argument("--delivery", default="lossless")
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--transport", default="auto")
    parser.add_argument("--pool-mb", type=int, default=16)
    parser.add_argument("--pool-kind", choices=["memfd", "named"])
    parser.add_argument("--wait-up", type=float, default=20.0)
    parser.add_argument("--end", choices=["normal", "exception", "hang"], default="normal")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    kind = PoolKind(args.pool_kind) if args.pool_kind else None
    backend = NapariStreamingBackend(
        NapariStreamingConfig(
            napari_host="127.0.0.1",
            napari_port=args.port,
            delivery=args.delivery,
            lossless_budget_s=args.budget,
            transport=args.transport,
            shm_pool_mb=args.pool_mb,
        ),
        options=LinkOptions(pool_kind=kind),
    )
    backend.save_batch([], [])  # opens the link
    (link,) = backend.links().values()
    up = link.wait_up(time.monotonic() + args.wait_up)
    emit("up", up=up, pool=link.pools.active.id if link.pools.active else None)
    batch = 0
    while args.count == 0 or batch < args.count:
        batch += 1
        arrays = [image(batch, i, args.size) for i in range(args.images)]
        items = [item(batch, i, args.size, args.planes) for i in range(args.images)]
        started = time.monotonic()
        report = backend.save_batch(arrays, items)
        emit(
            "sent",
            batch=batch,
            sent=report.sent,
            dropped={r.value: n for r, n in report.dropped.items()},
            seconds=time.monotonic() - started,
        )
    if args.end == "exception":
        raise RuntimeError("the producer fails on purpose")
    if args.end == "hang":
        emit("hanging")
        threading.Event().wait()
    backend.close()
    totals = backend.totals
    emit("done", sent=totals.sent, dropped={r.value: n for r, n in totals.dropped.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
