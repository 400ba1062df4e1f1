"""A viewer that stalls mid-stream (SIGSTOP longer than the sync wait, as a starved receive
thread on a loaded machine would) and resumes: the producer's link goes down and comes back
to the same viewer. No slot still lent to it may be written again, and every image is
accounted for: producer's sent == viewer's shown + the viewer's counted drops."""

from __future__ import annotations

import signal
import threading
import zlib

import numpy as np

from platestream.backend import NapariStreamingBackend, SaveReport
from platestream.schemas import DropReason

from ..waiting import wait_until
from .helpers import Child, config, spawn_receiver, viewer_status

IMAGES = 400
STALL_S = 3.0  # a stall longer than the link's sync wait + rpc timeout
SHAPE = (256, 256)  # 128 KiB: a 1 MiB pool holds 7, so slots are reused all the time


def image(index: int) -> np.ndarray:
    return np.full(SHAPE, index, np.uint16)


def test_a_stalled_viewer_resumes_with_no_image_lost_or_torn(children: list[Child]) -> None:
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    backend = NapariStreamingBackend(config(port, delivery="lossless", shm_pool_mb=1))
    report = SaveReport()
    failure: list[BaseException] = []

    def stream() -> None:
        try:
            for index in range(IMAGES):
                report.add(backend.save(image(index), {"site": index + 1}))
        except BaseException as err:  # re-raised in the test's thread
            failure.append(err)

    producer = threading.Thread(target=stream)
    producer.start()
    seen = viewer.collect("image", 50, timeout_s=30)  # streaming is under way
    viewer.signal(signal.SIGSTOP)
    stalled = threading.Event()
    stalled.wait(3.0)  # the fault: a stall twice as long as the link's sync wait + rpc
    viewer.signal(signal.SIGCONT)
    producer.join(120)
    assert not producer.is_alive() and not failure, failure
    (link,) = backend.links().values()
    assert link.session >= 2, "the stall should have taken the link down and up again"
    wait_until(lambda: link.flush(0.1), 30, "the viewer confirmed every batch")
    backend.close()

    dropped_by_viewer = viewer_status(port).dropped
    assert report.sent == IMAGES and not report.dropped, report
    expected = report.sent - sum(dropped_by_viewer.values())
    seen += viewer.collect("image", expected - len(seen), timeout_s=30)
    for line in seen:  # every image shown is the one sent for its site: no torn slot
        index = line["components"]["site"] - 1
        assert line["crc"] == zlib.crc32(image(index).data), f"site {index + 1} was rewritten"
    assert len({line["components"]["site"] for line in seen}) == len(seen)
    assert DropReason.OVERWRITTEN.value not in dropped_by_viewer, dropped_by_viewer
    assert len(seen) + sum(dropped_by_viewer.values()) == report.sent


def test_a_lossless_producer_that_closes_waits_for_a_lagging_viewer(children: list[Child]) -> None:
    """A lossless producer that is done must not leave before the viewer finished its images:
    its pool goes with it, and the viewer's queued images would turn into 'unknown_slot'
    (8 producers at once lost 114 images so). close() waits within the lossless budget."""
    viewer, ready = spawn_receiver("--echo")
    children.append(viewer)
    port = ready["data_port"]
    backend = NapariStreamingBackend(config(port, delivery="lossless", lossless_budget_s=20))
    for index in range(20):
        assert backend.save(image(index), {"site": index + 1}).sent == 1
    viewer.signal(signal.SIGSTOP)  # the viewer lags behind at the moment the producer is done
    closing = threading.Thread(target=backend.close)
    closing.start()
    threading.Event().wait(STALL_S)  # longer than a link's own 2 s close
    viewer.signal(signal.SIGCONT)
    closing.join(30)
    assert not closing.is_alive()
    assert backend.totals.sent == 20 and not backend.totals.dropped, backend.totals
    seen = viewer.collect("image", 20, timeout_s=30)
    assert sorted(line["components"]["site"] for line in seen) == list(range(1, 21))
    assert not viewer_status(port).dropped
