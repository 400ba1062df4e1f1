"""A seeded fuzz run against a real napari viewer process: a few thousand hostile,
malformed or merely odd messages on both ports, then an ordinary producer whose image must
show. The viewer never dies, answers throughout, and counts what it drops."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from platestream.config import default_display
from platestream.schemas import (
    PROTOCOL_VERSION,
    Ping,
    Pong,
    Probe,
    StatusReport,
    StatusRequest,
    decode_message,
    display_to_wire,
    encode_message,
)
from platestream.viewer.manager import NapariStreamVisualizer, ping

from ..credentials import credentialed
from ..waiting import wait_until
from .conftest import GUI
from .streaming import config, png_of

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(300)]

SEED = 20261202
MESSAGES = 2500
DTYPES = ["uint8", "uint16", "float32", "complex128", "bool", "int64", "float16"]
KINDS = ["image", "labels", "points", "shapes", "volume"]


def _text(rng: random.Random) -> str:
    pool = ["A01", "", "ü", "\ud800", "\udfff", "a" * 300, "\x00", "😀", "../../etc", "DAPI"]
    return rng.choice(pool) + rng.choice(pool)


def _header(rng: random.Random, seq: int) -> dict[str, Any]:
    shape = rng.choice([[8, 8], [], [8], [0, 8], [-1, 8], [2**40, 2**40], [1] * 33, [2, 8, 8]])
    dtype = rng.choice(DTYPES)
    nbytes = rng.choice([128, 0, 7, 2**62])
    pixels: dict[str, Any] = rng.choice(
        [
            {"where": "inline", "frame": 1, "nbytes": nbytes},
            {"where": "inline", "frame": rng.choice([0, 2, 99]), "nbytes": nbytes},
            {  # a forged reference into a pool this viewer never mapped
                "where": "shm",
                "pool": "psm_" + secrets.token_hex(rng.randint(1, 8)),
                "slot": rng.choice([0, 3, 2**40]),
                "offset": rng.choice([0, 8192, 2**50]),
                "nbytes": nbytes,
                "generation": rng.choice([0, 2, 3]),
            },
        ]
    )
    item = {
        "components": {_text(rng): rng.choice([1, "A01", 2**70, 1.5, None])},
        "step_index": rng.choice([0, 1, -1, 2**64]),
        "step_name": _text(rng),
        "shape": shape,
        "dtype": dtype,
        "kind": rng.choice(KINDS),
        "extra": {"path": _text(rng)},
        "pixels": pixels,
    }
    return {
        "type": "batch",
        "v": rng.choice([PROTOCOL_VERSION] * 8 + [0, 99, "1"]),
        "producer": rng.choice(["fuzz", _text(rng)]),
        "seq": rng.choice([seq, 0, 10**4000, -5]),
        "saved_at": time.time(),
        "sent_at": rng.choice([time.time(), float("1e308")]),
        "delivery": rng.choice(["live", "lossless", "psychic"]),
        "display": rng.choice([display_to_wire(default_display()), {}, [], {"colormap": 5}]),
        "items": rng.choice([[item], [item] * 3, [], "items"]),
    }


def messages(rng: random.Random) -> Iterator[list[bytes]]:
    """Random bytes, truncated or extra frames, wrong schemas and versions, huge shapes,
    forged pool references, every text field fuzzed."""
    for seq in range(1, MESSAGES + 1):
        choice = rng.random()
        if choice < 0.1:
            yield [rng.randbytes(rng.randint(0, 200))]
        elif choice < 0.15:
            yield [rng.randbytes(rng.randint(0, 50)) for _ in range(rng.randint(1, 4))]
        else:
            body = json.dumps(_header(rng, seq), ensure_ascii=True, allow_nan=True).encode()
            if rng.random() < 0.1:
                body = body[: rng.randint(0, len(body))]  # a truncated header
            frames = [body] + [
                rng.randbytes(rng.choice([128, 7, 0])) for _ in range(rng.randint(0, 2))
            ]
            yield frames


class Raw:
    def __init__(self, port: int) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.pub = self.context.socket(zmq.PUB)
        self.pub.linger = 0
        credentialed(self.pub)
        self.pub.connect(f"tcp://127.0.0.1:{port}")
        self.control = self.context.socket(zmq.DEALER)
        self.control.linger = 0
        credentialed(self.control)
        self.control.connect(f"tcp://127.0.0.1:{port + 1000}")
        self.req = self.context.socket(zmq.REQ)
        self.req.linger = 0
        credentialed(self.req)
        self.req.connect(f"tcp://127.0.0.1:{port + 1000}")

    def barrier(self, timeout_s: float = 60) -> None:
        """Return once the viewer processed everything published before (a probed ping)."""
        token = secrets.token_hex(4)
        self.req.send(encode_message(Ping(producer="fuzz", token=token, wait_s=5.0)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pub.send(encode_message(Probe(producer="fuzz", token=token)))
            if self.req.poll(50):
                pong = decode_message(self.req.recv(), port="reply")
                assert isinstance(pong, Pong)
                if pong.probe_seen:
                    return
                self.req.send(encode_message(Ping(producer="fuzz", token=token, wait_s=5.0)))
        raise AssertionError("the viewer never saw the probe")

    def status(self) -> StatusReport:
        self.req.send(encode_message(StatusRequest()))
        assert self.req.poll(20000), "no status reply"
        reply = decode_message(self.req.recv(), port="reply")
        assert isinstance(reply, StatusReport)
        return reply

    def close(self) -> None:
        for sock in (self.pub, self.control, self.req):
            sock.close(0)
        self.context.term()


def test_a_fuzzed_viewer_survives_and_still_shows_a_real_image(
    ports: Callable[[int], int], tmp_path: Any
) -> None:
    rng = random.Random(SEED)
    port = ports(1)
    with NapariStreamVisualizer(config(port), title="fuzz", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        raw = Raw(port)
        try:
            raw.barrier()
            for index, frames in enumerate(messages(rng)):
                raw.pub.send_multipart(frames)
                if index % 10 == 0:  # junk on the control port too, never awaited
                    raw.control.send_multipart([b"", rng.randbytes(rng.randint(0, 80))])
                if index % 500 == 499:
                    raw.barrier()
                    assert ping("127.0.0.1", port) is not None, f"dead after {index + 1}"
            raw.barrier()
            status = raw.status()
            assert sum(status.dropped.values()) > MESSAGES // 2, status.dropped
            print(
                f"fuzz: {MESSAGES} data messages, dropped {dict(status.dropped)}, "
                f"received {status.images}, displayed {status.state.display.displayed}"
            )
        finally:
            raw.close()

        # Afterwards an ordinary producer streams, and its image shows.
        before = visualizer.status()
        assert before is not None
        image = np.zeros((64, 64), np.uint16)
        image[16:48, 16:48] = 1000
        visualizer.save_batch([image], [{"well": "H12", "channel": "after-fuzz"}])

        def shown() -> bool:
            report = visualizer.status()
            return report is not None and (
                report.state.display.displayed > before.state.display.displayed
            )

        wait_until(shown, 60, "the real image displayed")
        rgba = png_of(visualizer.snapshot(tmp_path / "after-fuzz.png"))
        assert (rgba[..., :3] > 240).all(axis=-1).any(), "the real image is not drawn"
