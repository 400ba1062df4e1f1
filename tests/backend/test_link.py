"""Handshake, acknowledgements, reconnection: no slow joiner, no sleep, no stuck socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import zmq

from platestream.backend import (
    ControlClient,
    ControlTimeout,
    KeyStore,
    NapariStreamingBackend,
    Receiver,
    ReceiverOptions,
)
from platestream.layering import ImageItem
from platestream.schemas import (
    DropReason,
    Ok,
    Ping,
    Pong,
    ViewerState,
    decode_message,
    encode_message,
)

from ..waiting import wait_until
from .helpers import config

Make = Callable[..., NapariStreamingBackend]


def free_port_pair() -> int:
    """A data port whose control port (+1000) is free too, right now."""
    for _ in range(200):
        with socket.socket() as data, socket.socket() as control:
            data.bind(("127.0.0.1", 0))
            port = int(data.getsockname()[1])
            if not 1024 <= port <= 64535:
                continue
            try:
                control.bind(("127.0.0.1", port + 1000))
            except OSError:
                continue
            return port
    raise AssertionError("no free port pair")


def images(n: int, size: int = 32, start: int = 0) -> tuple[list[np.ndarray], list[ImageItem]]:
    arrays = [np.full((size, size), start + i, np.uint16) for i in range(n)]
    items = [ImageItem({"site": start + i}, 0, "s", (size, size), "uint16") for i in range(n)]
    return arrays, items


def only_link(backend: NapariStreamingBackend) -> object:
    (link,) = backend.links().values()
    return link


def test_live_save_with_no_viewer_returns_at_once_and_counts_the_drops(make_backend: Make) -> None:
    backend = make_backend(config(free_port_pair()))
    arrays, items = images(16, 256)
    started = time.monotonic()
    report = backend.save_batch(arrays, items)
    assert time.monotonic() - started < 0.5
    assert report.sent == 0 and report.dropped == {DropReason.NO_VIEWER: 16}


def test_a_producer_started_first_streams_once_the_viewer_appears(make_backend: Make) -> None:
    port = free_port_pair()
    backend = make_backend(config(port, delivery="lossless", lossless_budget_s=20.0))
    # No viewer yet: a live save drops at once, and the link keeps trying to connect.
    assert backend.save_batch(*images(1), config=config(port)).dropped[DropReason.NO_VIEWER] == 1
    with Receiver(ReceiverOptions(port=port)) as receiver:
        receiver.start()
        link = backend.links()[("127.0.0.1", port)]
        assert link.wait_up(time.monotonic() + 20)
        report = backend.save_batch(*images(3))
        assert report.sent == 3
        assert receiver.wait(5)
        assert sum(len(b.images) for b in receiver.take()) == 3


def test_the_first_batch_after_the_handshake_always_arrives(make_backend: Make) -> None:
    for round_ in range(8):
        with Receiver(ReceiverOptions(port=0)) as receiver:
            receiver.start()
            backend = make_backend(config(receiver.data_port, delivery="lossless"))
            report = backend.save_batch(*images(1, start=round_))
            assert report.sent == 1, report
            assert receiver.wait(5), f"round {round_}: first batch lost"
            (batch,) = receiver.take()
            assert batch.images[0].data[0, 0] == round_
            backend.close()


class FakeViewer:
    """A control port that answers every ping with a pong saying the probe never came."""

    def __init__(self, port: int, answer: bool = True) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.linger = 0
        KeyStore().local_server().apply(self.router)  # it has this user's keys, no ZAP
        self.router.bind(f"tcp://127.0.0.1:{port + 1000}")
        self.answer = answer
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        state = ViewerState(
            ready=True,
            producers=0,
            received=0,
            dropped=0,
            queue_depth=0,
            queue_bytes=0,
            memory_bytes=0,
        )
        while not self._stop.is_set():
            if not self.router.poll(50):
                continue
            *envelope, body = self.router.recv_multipart()
            message = decode_message(body, port="request")
            self.requests.append(message.TYPE)
            if not self.answer:
                continue
            reply = (
                Pong(
                    protocol=1,
                    viewer_id="fake",
                    pid=1,
                    host="h",
                    data_port=1,
                    control_port=2,
                    started_at=0.0,
                    probe_seen=False,
                    state=state,
                )
                if isinstance(message, Ping)
                else Ok()
            )
            self.router.send_multipart([*envelope, encode_message(reply)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.router.close(0)
        self.context.term()


@pytest.fixture
def fake_viewer() -> Iterator[Callable[..., FakeViewer]]:
    made: list[FakeViewer] = []

    def make(port: int, answer: bool = True) -> FakeViewer:
        made.append(FakeViewer(port, answer))
        return made[-1]

    yield make
    for viewer in made:
        viewer.close()


def test_a_pong_without_the_probe_is_no_handshake(
    make_backend: Make, fake_viewer: Callable[..., FakeViewer]
) -> None:
    port = free_port_pair()
    viewer = fake_viewer(port)
    backend = make_backend(config(port))
    backend.save_batch(*images(1))
    wait_until(lambda: viewer.requests.count("ping") >= 2, 20, "two handshake attempts")
    link = backend.links()[("127.0.0.1", port)]
    assert not link.up  # the control port alone proves nothing about the data path
    assert backend.save_batch(*images(2)).dropped == {DropReason.NO_VIEWER: 2}


def test_a_request_without_a_reply_recreates_the_req_socket(
    fake_viewer: Callable[..., FakeViewer],
) -> None:
    port = free_port_pair()
    viewer = fake_viewer(port, answer=False)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    client = ControlClient(
        context, f"tcp://127.0.0.1:{port + 1000}", curve=KeyStore().local_client(), timeout_s=0.3
    )
    try:
        stuck = client.socket
        with pytest.raises(ControlTimeout):
            client.request(Ping())
        assert client.socket is not stuck and stuck.closed
        viewer.answer = True
        assert isinstance(client.request(Ping(), timeout_s=5).message, Pong)
    finally:
        client.close()
        context.term()


def test_a_restarted_viewer_is_found_again(make_backend: Make) -> None:
    first = Receiver(ReceiverOptions(port=0)).start()
    port = first.data_port
    backend = make_backend(config(port, delivery="lossless"))
    assert backend.save_batch(*images(1)).sent == 1
    link = backend.links()[("127.0.0.1", port)]
    old_viewer = link.viewer_id
    first.close()
    with Receiver(ReceiverOptions(port=port)) as second:
        second.start()
        wait_until(lambda: link.up and link.viewer_id == second.viewer_id, 20, "reconnect")
        assert link.viewer_id != old_viewer
        assert backend.save_batch(*images(2, start=5)).sent == 2
        assert second.wait(5)
        values = sorted(int(i.data[0, 0]) for b in second.take() for i in b.images)
        assert values == [5, 6]


def test_acks_arrive_and_a_closed_producer_releases_its_pool(make_backend: Make) -> None:
    with Receiver(ReceiverOptions(port=0)) as receiver:
        receiver.start()
        backend = make_backend(config(receiver.data_port, delivery="lossless"))
        backend.save_batch(*images(4))
        link = backend.links()[("127.0.0.1", receiver.data_port)]
        assert link.flush(5) and link.acked_seq == link.next_seq - 1
        assert receiver.stats().pools == 1
        backend.close()
        wait_until(lambda: receiver.stats().pools == 0, 10, "the pool released")


def test_steps_share_one_link_per_viewer(make_backend: Make, receiver: Receiver) -> None:
    first = make_backend(config(receiver.data_port))
    second = make_backend(config(receiver.data_port))
    first.save_batch(*images(1))
    second.save_batch(*images(1))
    assert only_link(first) is only_link(second)
    first.close()
    assert only_link(second).state.value != "closed"  # still used by the second


def test_one_backend_feeds_several_viewers(
    make_backend: Make, make_receiver: Callable[..., Receiver]
) -> None:
    a, b = make_receiver(), make_receiver()
    backend = make_backend()
    for receiver, value in ((a, 1), (b, 2)):
        report = backend.save_batch(
            *images(1, start=value), config=config(receiver.data_port, delivery="lossless")
        )
        assert report.sent == 1
    for receiver, value in ((a, 1), (b, 2)):
        assert receiver.wait(5)
        assert receiver.take()[0].images[0].data[0, 0] == value
    assert len(backend.links()) == 2
