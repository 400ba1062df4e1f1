"""A viewer killed (-9) mid-stream, with and without a new one on its port: no image the
producer handed over is unaccounted for, and a producer without a viewer fails fast."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np

from platestream.backend import NapariStreamingBackend, SaveReport
from platestream.schemas import DropReason

from .helpers import Child, config, echoed, spawn_receiver, viewer_status

IMAGES = 200


def image(index: int) -> np.ndarray:
    return np.full((128, 128), index, np.uint16)


def sites(lines: list[dict[str, object]]) -> set[int]:
    return {int(line["components"]["site"]) for line in lines}  # type: ignore[index]


def drain_until(child: Child, count: int) -> list[dict[str, object]]:
    return child.collect("image", count, timeout_s=30)


def test_images_in_flight_when_the_viewer_is_replaced_are_counted(children: list[Child]) -> None:
    first, ready = spawn_receiver("--echo")
    children.append(first)
    port = ready["data_port"]
    backend = NapariStreamingBackend(config(port, delivery="lossless", shm_pool_mb=2))
    report = SaveReport()
    done = threading.Event()

    def stream() -> None:
        for index in range(IMAGES):
            report.add(backend.save(image(index), {"site": index + 1}))
        done.set()

    producer = threading.Thread(target=stream)
    producer.start()
    seen_first = first.collect("image", 40, timeout_s=30)
    first.signal(signal.SIGKILL)
    first.wait(20)
    second, _ = spawn_receiver("--echo", port=port)
    children.append(second)
    producer.join(120)
    assert done.is_set()
    (link,) = backend.links().values()
    assert link.flush(30)
    report.add(backend.save(image(IMAGES), {"site": IMAGES + 1}))  # collects late counts
    assert link.flush(30)
    backend.close()

    status = viewer_status(port)
    handed = IMAGES + 1
    assert (
        report.sent + sum(n for r, n in report.dropped.items() if r is not DropReason.VIEWER_LOST)
        == handed
    )
    shown_second = drain_until(second, status.images - sum(status.dropped.values()))
    shown_first = sites(seen_first + echoed(first))
    lost = report.dropped[DropReason.VIEWER_LOST]
    unconfirmed = report.sent - len(sites(shown_second)) - sum(status.dropped.values())
    # Every image is shown by one viewer or counted lost by the producer; the producer
    # counts as lost only what the new viewer did not get.
    missing = report.sent - len(shown_first | sites(shown_second)) - sum(status.dropped.values())
    assert lost >= missing, (lost, missing)
    assert lost <= unconfirmed, (lost, unconfirmed)


def test_without_a_viewer_lossless_fails_fast_after_one_budget(children: list[Child]) -> None:
    viewer, ready = spawn_receiver()
    children.append(viewer)
    budget = 1.0
    backend = NapariStreamingBackend(
        config(ready["data_port"], delivery="lossless", lossless_budget_s=budget)
    )
    assert not backend.save(image(0), {"site": 1}).dropped  # streaming works
    viewer.signal(signal.SIGKILL)
    viewer.wait(20)
    (link,) = backend.links().values()
    deadline = time.monotonic() + 10
    while link.up and time.monotonic() < deadline:  # the monitor sees the connection drop
        link.wait_for_acks(link.acked_seq, link.session, time.monotonic() + 0.1)
    assert not link.up
    first = backend.save(image(1), {"site": 2})
    assert first.dropped == {DropReason.BUDGET: 1} and first.waited_s >= budget * 0.9
    later = [backend.save(image(i), {"site": i + 1}) for i in range(2, 12)]
    assert all(r.dropped == {DropReason.NO_VIEWER: 1} for r in later), later
    assert all(r.waited_s < budget / 2 for r in later)  # none waits a budget again
    backend.close()
