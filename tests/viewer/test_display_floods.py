"""Floods the display must survive without stalling: one message that makes many layers,
and a burst of snapshot requests. The viewer keeps answering, creates layers a few per
frame (and says how many wait), refuses snapshots beyond a small queue, and honours
SIGTERM meanwhile."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import numpy as np
import pytest
import zmq

from platestream.layering import ImageItem, LayerKind
from platestream.schemas import (
    Error,
    ErrorCode,
    Snapshot,
    SnapshotReply,
    decode_message,
    encode_message,
)
from platestream.viewer.manager import NapariStreamVisualizer, wait_exit

from ..credentials import credentialed
from ..waiting import wait_until
from .conftest import GUI
from .streaming import config

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]
CHANNELS = 48


def test_a_message_of_many_layers_is_shown_a_few_per_frame(ports: Callable[[int], int]) -> None:
    port = ports(1)
    with NapariStreamVisualizer(config(port), title="flood", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        arrays = [np.full((32, 32), c, np.uint16) for c in range(CHANNELS)]
        targets = [{"well": "A01", "channel": f"c{c:02d}"} for c in range(CHANNELS)]
        visualizer.save_batch(arrays, targets)  # one layer per channel (the default)
        pending_seen = []

        def all_created() -> bool:
            status = visualizer.status()
            if status is None:
                return False
            pending_seen.append(status.state.display.layers_pending)
            return status.state.display.layers == CHANNELS

        wait_until(all_created, 180, f"{CHANNELS} layers")
        assert max(pending_seen) > 0  # some waited: the frame's work was bounded
        assert visualizer.status().state.display.displayed == CHANNELS  # type: ignore[union-attr]


def test_sigterm_is_honoured_while_layers_are_being_created(ports: Callable[[int], int]) -> None:
    port = ports(1)
    visualizer = NapariStreamVisualizer(config(port), title="flood", persistent=True)
    visualizer.start_viewer(async_mode=False)
    assert visualizer.pong is not None
    pid = visualizer.pong.pid
    arrays = [np.full((32, 32), c, np.uint16) for c in range(CHANNELS * 4)]
    targets = [{"well": "A01", "channel": f"c{c:03d}"} for c in range(CHANNELS * 4)]
    visualizer.save_batch(arrays, targets)

    def creating() -> bool:
        status = visualizer.status()
        return status is not None and status.state.display.layers_pending > 0

    wait_until(creating, 60, "layer creation under way")
    os.kill(pid, signal.SIGTERM)
    assert wait_exit(pid, 30), "SIGTERM ignored while layers were created"
    layers = visualizer.status(timeout_s=0.5)
    assert layers is None  # gone
    visualizer.close()


def test_a_burst_of_snapshots_is_bounded_and_answered(ports: Callable[[int], int]) -> None:
    port = ports(1)
    with NapariStreamVisualizer(config(port), title="snaps", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        visualizer.save_batch([np.ones((32, 32), np.uint16)], [{"well": "A01"}])
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        dealer = context.socket(zmq.DEALER)
        dealer.linger = 0
        credentialed(dealer)
        dealer.connect(f"tcp://127.0.0.1:{port + 1000}")
        try:
            burst = 40
            for _ in range(burst):
                dealer.send_multipart([b"", encode_message(Snapshot())])
            answers: list[object] = []
            while len(answers) < burst:
                assert dealer.poll(60000), f"{len(answers)} of {burst} snapshot requests answered"
                frames = dealer.recv_multipart()
                answers.append(decode_message(frames[1], port="reply"))
            pictures = [a for a in answers if isinstance(a, SnapshotReply)]
            busy = [a for a in answers if isinstance(a, Error) and a.code is ErrorCode.REFUSED]
            assert len(pictures) + len(busy) == burst
            assert busy and "busy" in busy[0].message  # refused at once, not queued
            assert pictures  # the queue still served some
            assert visualizer.status() is not None  # and the viewer answers
        finally:
            dealer.close(0)
            context.term()


def test_a_plate_of_points_and_shapes_in_one_message_does_not_stall_the_display(
    ports: Callable[[int], int],
) -> None:
    """2,048 wells, each with points and 4 polygons, in one message (4,096 items): napari
    is given the polygons a few hundred per frame, so the GUI thread keeps answering (a
    ``layers`` request is answered there) while they are waiting, counted."""
    port = ports(1)
    wells = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in range(1, 80)][:2048]
    square = np.array([[0, 0], [0, 6], [6, 6], [6, 0]], float)
    arrays: list[np.ndarray] = []
    targets: list[ImageItem] = []
    for well in wells:
        components = {"well": well}
        arrays.append(np.array([[3.0, 3.0], [9.0, 9.0]]))
        targets.append(ImageItem(components, 0, "seg", (2, 2), "float64", kind=LayerKind.POINTS))
        arrays.append(np.stack([square + 8 * i for i in range(4)]))
        targets.append(ImageItem(components, 0, "seg", (4, 4, 2), "float64", kind=LayerKind.SHAPES))
    with NapariStreamVisualizer(config(port), title="shapes", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        report = visualizer.save_batch(arrays, targets)
        assert report is not None and report.sent == len(targets)
        waiting: list[int] = []

        def feeding() -> bool:
            status = visualizer.status()
            if status is not None:
                waiting.append(status.state.display.shapes_pending)
            return bool(waiting) and waiting[-1] > 0

        wait_until(feeding, 120, "polygons waiting for napari")
        layers = visualizer.layers(timeout_s=5)  # answered by the GUI thread meanwhile
        assert any(layer.kind == "shapes" for layer in layers.layers)

        def fed() -> bool:
            status = visualizer.status()
            return status is not None and status.state.display.shapes_pending == 0

        wait_until(fed, 240, "every polygon given to napari")
        assert max(waiting) <= 4 * len(wells)
        status = visualizer.status()
        assert status is not None and status.state.display.displayed == len(targets)
