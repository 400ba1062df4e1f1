"""Live and lossless delivery: budgets kept, queues bounded, drops counted on both sides."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from platestream.backend import LinkOptions, NapariStreamingBackend, Receiver
from platestream.layering import ImageItem
from platestream.schemas import DropReason

from ..waiting import wait_until
from .helpers import config

Make = Callable[..., NapariStreamingBackend]
MakeReceiver = Callable[..., Receiver]


def plane_images(
    n: int, size: int, version: int, planes: int | None = None, first_site: int = 0
) -> tuple[list[np.ndarray], list[ImageItem]]:
    """``n`` images of ``planes`` planes (sites from ``first_site``), stamped ``version``."""
    planes = planes or n
    rng = np.random.default_rng(version)
    arrays = [rng.integers(0, 60000, (size, size), dtype=np.uint16) for _ in range(n)]
    for array in arrays:
        array[0, 0] = version
    items = [
        ImageItem(
            {"well": "B02", "site": first_site + i % planes}, 3, "mask", (size, size), "uint16"
        )
        for i in range(n)
    ]
    return arrays, items


def received(receiver: Receiver, expected: int, timeout_s: float = 20.0) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expected:
        assert receiver.wait(max(0.0, deadline - time.monotonic())), f"got {len(out)}/{expected}"
        out += [image.data for batch in receiver.take() for image in batch.images]
    return out


@pytest.mark.parametrize("transport", ["shm", "inline"])
def test_lossless_delivers_every_image_intact_through_a_pool_smaller_than_a_batch(
    make_backend: Make, receiver: Receiver, transport: str
) -> None:
    backend = make_backend(
        config(receiver.data_port, delivery="lossless", transport=transport, shm_pool_mb=1)
    )
    sent: list[np.ndarray] = []
    for version in range(1, 6):
        arrays, items = plane_images(12, 256, version)  # 12 x 128 KiB per batch, 1 MiB pool
        arrays[1] = arrays[1][:, ::-1]  # non-contiguous, too
        report = backend.save_batch(arrays, items)
        assert report.sent == 12 and not report.dropped, report
        sent += arrays
    got = received(receiver, len(sent))
    assert len(got) == len(sent)
    for mine, theirs in zip(sent, got, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert receiver.stats().dropped == {}


def test_the_caller_may_reuse_its_array_as_soon_as_save_returns(
    make_backend: Make, receiver: Receiver
) -> None:
    for transport in ("shm", "inline"):
        backend = make_backend(config(receiver.data_port, delivery="lossless", transport=transport))
        array = np.zeros((64, 64), np.int32)
        backend.save_batch([array], [ImageItem({}, 0, "s", (64, 64), "int32")])
        array += 99  # the pipeline's next step writes into the same buffer
        (image,) = received(receiver, 1)
        assert not image.any()
        backend.close()


def test_live_never_waits_for_a_viewer_that_stopped_reading(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver()
    options = LinkOptions(sync_wait_s=0.2, rpc_timeout_s=0.3)
    backend = make_backend(config(receiver.data_port, shm_pool_mb=2), options=options)
    assert backend.connect(timeout_s=20)
    arrays, items = plane_images(8, 128, 1)
    assert backend.save_batch(arrays, items).sent == 8
    receiver.stop()  # bound, alive, but nobody reads the sockets any more
    assert receiver.wait_stopped(5)
    totals: Counter[DropReason] = Counter()
    slowest = 0.0
    for version in range(2, 40):
        arrays, items = plane_images(8, 128, version)
        if version % 2:  # odd versions show new planes, which cannot take over a slot
            items = [
                dataclasses.replace(i, components={"site": version * 8 + n})
                for n, i in enumerate(items)
            ]
        started = time.monotonic()
        report = backend.save_batch(arrays, items)
        slowest = max(slowest, time.monotonic() - started)
        totals.update(report.dropped)
        superseded = report.dropped[DropReason.SUPERSEDED]
        assert report.sent + sum(report.dropped.values()) - superseded == 8
    assert slowest < 0.25  # a few ms of waiting, plus copying, on a busy 2-core machine
    assert totals[DropReason.POOL_FULL] + totals[DropReason.NO_VIEWER] > 0
    assert totals[DropReason.SUPERSEDED] > 0  # newer images took over their plane's slot


def test_live_newest_image_per_plane_wins_in_the_display_queue(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(queue_batches=1000)
    backend = make_backend(config(receiver.data_port))
    assert backend.connect(timeout_s=20)
    versions = 30
    for version in range(1, versions + 1):
        backend.save_batch(*plane_images(4, 32, version, planes=4))
    link = backend.links()[("127.0.0.1", receiver.data_port)]
    assert link.flush(10)
    batches = receiver.take()
    newest = {
        image.item.components["site"]: int(image.data[0, 0])
        for batch in batches
        for image in batch.images
    }
    assert newest == {0: versions, 1: versions, 2: versions, 3: versions}
    kept = sum(len(b.images) for b in batches)
    assert kept == 4  # older versions were coalesced away in the queue
    stats = receiver.stats()
    dropped = stats.dropped
    assert stats.images + dropped.get("overwritten", 0) == backend.totals.sent
    assert kept + dropped.get("superseded", 0) + dropped.get("queue_full", 0) == stats.images
    assert dropped.get("superseded", 0) > 0


def test_live_queue_stays_bounded_and_counts_what_it_drops(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(queue_batches=4)
    backend = make_backend(config(receiver.data_port))
    assert backend.connect(timeout_s=20)
    for version in range(1, 41):
        # Every image its own plane: nothing coalesces, the queue must drop.
        backend.save_batch(*plane_images(2, 32, version, first_site=10 * version))
    link = backend.links()[("127.0.0.1", receiver.data_port)]
    assert link.flush(10)
    assert len(receiver.queue) <= 4
    stats = receiver.stats()
    kept = sum(len(b.images) for b in receiver.take())
    assert kept + stats.dropped.get("queue_full", 0) + stats.dropped.get("superseded", 0) == (
        backend.totals.sent
    )
    assert stats.producers[link.producer_id].dropped.get("queue_full", 0) > 0


def test_lossless_waits_within_its_budget_then_reports_the_shortfall(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(queue_batches=2)
    budget = 0.6
    backend = make_backend(
        config(receiver.data_port, delivery="lossless", lossless_budget_s=budget, shm_pool_mb=1)
    )
    assert backend.save_batch(*plane_images(1, 32, 1)).sent == 1
    assert backend.save_batch(*plane_images(1, 32, 2)).sent == 1
    # The display took nothing: its queue is full of lossless batches, so the receiver
    # stops reading, no acks come, and the 1 MiB pool fills up.
    started = time.monotonic()
    report = backend.save_batch(*plane_images(16, 256, 3))  # 16 x 128 KiB
    elapsed = time.monotonic() - started
    assert budget <= elapsed < budget + 2.0
    assert report.dropped[DropReason.BUDGET] > 0
    assert report.sent + report.dropped[DropReason.BUDGET] == 16
    # Once the display takes, reading resumes and everything sent arrives.
    expected = 2 + report.sent
    assert len(received(receiver, expected)) == expected


def test_lossless_without_a_viewer_waits_its_budget_and_no_longer(make_backend: Make) -> None:
    from .test_link import free_port_pair

    backend = make_backend(config(free_port_pair(), delivery="lossless", lossless_budget_s=0.3))
    started = time.monotonic()
    report = backend.save_batch(*plane_images(3, 32, 1))
    assert 0.3 <= time.monotonic() - started < 2.0
    assert report.dropped == {DropReason.BUDGET: 3}


def test_inline_window_bounds_unacknowledged_bytes(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(queue_batches=1000)
    backend = make_backend(config(receiver.data_port, transport="inline", shm_pool_mb=1))
    assert backend.connect(timeout_s=20)
    link_key = ("127.0.0.1", receiver.data_port)
    for version in range(1, 30):
        backend.save_batch(*plane_images(4, 256, version))  # 512 KiB per batch, 1 MiB window
        link = backend.links()[link_key]
        pending = sum(n for seq, n in link.inline_in_flight if seq > link.acked_seq)
        assert pending <= 1 << 20
    assert link.flush(10)
    wait_until(lambda: receiver.stats().images >= backend.totals.sent, 10, "all received")


def test_inline_copies_stay_intact_while_the_receiver_does_not_read(
    make_backend: Make, make_receiver: MakeReceiver
) -> None:
    receiver = make_receiver(queue_batches=1)
    backend = make_backend(
        config(
            receiver.data_port,
            delivery="lossless",
            transport="inline",
            shm_pool_mb=5,
            lossless_budget_s=0.3,
        )
    )
    sent: list[np.ndarray] = []
    for version in range(1, 8):
        arrays, items = plane_images(1, 724, version)  # 1 MiB each
        if backend.save_batch(arrays, items).sent:
            sent.append(arrays[0])
    # The display took nothing: the receiver stopped reading after the first batch, and
    # the later ones wait in ZeroMQ's queues while the producer reuses its buffers.
    assert 2 < len(sent) < 7
    got = received(receiver, len(sent))
    for mine, theirs in zip(sent, got, strict=True):
        np.testing.assert_array_equal(mine, theirs)
