"""A napari viewer that stalls mid-stream and resumes (SIGSTOP longer than the sync wait).

The viewer lends pixels straight from the producer's slots to its display until they are
in the layers; the producer's link goes down during the stall and comes back to the same
viewer. No slot still lent may be written again (it would be blanked as ``overwritten``),
and producer's sent == viewer's displayed + the viewer's counted drops.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import numpy as np
import pytest

from platestream.backend import SaveReport
from platestream.viewer.manager import NapariStreamVisualizer

from ..waiting import wait_until
from .conftest import GUI
from .streaming import config

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]

IMAGES = 300


def test_a_stalled_viewer_shows_every_image_and_blanks_none(ports: Callable[[int], int]) -> None:
    port = ports(1)
    settings = config(port, shm_pool_mb=1)  # 128 KiB images, 7 slots: reused all the time
    with NapariStreamVisualizer(settings, title="stall", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        assert visualizer.pong is not None
        pid = visualizer.pong.pid
        report = SaveReport()
        failure: list[BaseException] = []

        def stream() -> None:
            try:
                for index in range(IMAGES):
                    array = np.full((256, 256), index + 1, np.uint16)
                    sent = visualizer.save_batch([array], [{"well": "A01", "site": index + 1}])
                    if sent is not None:
                        report.add(sent)
            except BaseException as err:
                failure.append(err)

        producer = threading.Thread(target=stream)
        producer.start()
        wait_until(lambda: report.sent >= 40, 60, "streaming under way")
        os.kill(pid, signal.SIGSTOP)
        threading.Event().wait(3.0)  # the fault: a stall twice the sync wait + rpc timeout
        os.kill(pid, signal.SIGCONT)
        producer.join(120)
        assert not producer.is_alive() and not failure, failure
        assert report.sent == IMAGES and not report.dropped, report

        def settled() -> bool:
            status = visualizer.status()
            return status is not None and (
                status.state.display.displayed + sum(status.dropped.values()) >= IMAGES
            )

        wait_until(settled, 60, "every image displayed or counted")
        status = visualizer.status()
        assert status is not None
        assert "overwritten" not in status.dropped, status.dropped  # no slot rewritten on loan
        assert status.state.display.displayed + sum(status.dropped.values()) == IMAGES
