"""The viewer's window: shared memory in flight is shared out among the producers, so many
producers do not each grow a whole pool while the viewer is the bottleneck."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import numpy as np

from platestream.backend import NapariStreamingBackend, Receiver, ReceiverOptions
from platestream.backend._link import WINDOW_START
from platestream.backend.shm import SlotPool
from platestream.layering import ImageItem
from platestream.schemas import Attach, Attached, Sync, Synced

from .helpers import config
from .raw_client import RawClient

MiB = 1 << 20
Make = Callable[..., NapariStreamingBackend]


def test_the_window_is_shared_out_among_the_attached_producers(client: RawClient) -> None:
    total = client.receiver.options.window_bytes
    pools = [SlotPool(MiB) for _ in range(3)]
    try:
        windows = []
        for number, pool in enumerate(pools, 1):
            producer = f"p{number}"
            info = pool.segment.info()
            attach = Attach(
                producer=producer, pid=os.getpid(), pool=info, key=secrets.token_hex(16)
            )
            assert isinstance(client.request(attach), Attached)
            synced = client.request(Sync(producer=producer, after=0))
            assert isinstance(synced, Synced)
            windows.append(synced.window)
        minimum = client.receiver.options.window_min_bytes
        assert windows == [max(minimum, total // n) for n in (1, 2, 3)]
    finally:
        for pool in pools:
            pool.close()


def test_a_producer_carves_no_more_than_its_window_while_the_viewer_holds_everything(
    make_backend: Make,
) -> None:
    """A viewer that takes nothing (its display holds every lent slot) and gives each
    producer a 2 MiB window: the producer carves at most its starting window, then waits
    (and counts what its budget could not place), never the whole pool."""
    options = ReceiverOptions(port=0, zero_copy=True, window_bytes=2 * MiB, window_min_bytes=MiB)
    with Receiver(options) as receiver:
        receiver.start()
        backend = make_backend(
            config(receiver.data_port, delivery="lossless", lossless_budget_s=1.0)
        )
        item = ImageItem({"site": 1}, 0, "s", (512, 1024), "uint16")  # 1 MiB
        sent = 0
        for site in range(1, 41):
            image = ImageItem({"site": site}, 0, "s", item.shape, item.dtype)
            report = backend.save_batch([np.full(item.shape, site, np.uint16)], [image])
            sent += report.sent
        link = next(iter(backend.links().values()))
        pool = link.pools.active
        assert pool is not None
        carved = sum(slot.capacity for slot in pool._slots)
        assert 1 <= sent <= WINDOW_START // MiB
        assert carved <= WINDOW_START  # not the 256 MiB the pool could grow to
        assert link.window == 2 * MiB  # the viewer's word, once it acknowledged
