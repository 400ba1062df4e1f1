"""Another user on the same machine (uid nobody; the test is root) against a real viewer:
it cannot read this user's keys, and without them it cannot shut the viewer down, clear
it, take a snapshot, detach a producer's pool, read its status or inject an image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from platestream.backend import KeyStore
from platestream.viewer.manager import NapariStreamVisualizer

from ..waiting import wait_until
from .conftest import GUI
from .streaming import config

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]

# Imports everything as root (the virtualenv may be out of nobody's reach), then becomes
# uid nobody and tries each request with no credential, and with CURVE keys of its own.
ATTACK = r"""
import json, os, sys, time
import zmq
from zmq.utils.monitor import recv_monitor_message
from platestream.backend import KeyStore
from platestream.schemas import (
    Batch, Clear, Detach, InlinePixels, Shutdown, Snapshot, StatusRequest, WireDtype,
    WireItem, display_to_wire, encode_message, decode_message,
)
from platestream.config import DeliveryMode, default_display

port, viewer_public, producer = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
os.setgroups([]); os.setgid(65534); os.setuid(65534)
result = {"uid": os.getuid()}
try:
    KeyStore().local_client()
    result["keys"] = "read"
except PermissionError as err:
    result["keys"] = "refused"

requests = {
    "shutdown": Shutdown(viewer_id="0123456789abcdef"),
    "clear": Clear(),
    "snapshot": Snapshot(),
    "status": StatusRequest(),
    "detach": Detach(producer=producer, key="0" * 32),
}
context = zmq.Context()
answered = []
for mode in ("plain", "own keys"):
    def secure(sock):
        if mode == "own keys":
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = viewer_public
            sock.curve_publickey, sock.curve_secretkey = public, secret
        return sock
    for name, message in requests.items():
        req = secure(context.socket(zmq.REQ))
        req.linger = 0
        req.connect(f"tcp://127.0.0.1:{port + 1000}")
        req.send(encode_message(message))
        if req.poll(1000):
            answered.append(f"{mode} {name}: {decode_message(req.recv(), port='reply').TYPE}")
        req.close(0)
    pub = secure(context.socket(zmq.PUB))
    pub.linger = 0
    monitor = pub.get_monitor_socket()
    pub.connect(f"tcp://127.0.0.1:{port}")
    handshake = "none in 5 s"
    while monitor.poll(5000):  # how the connection's handshake ended
        event = recv_monitor_message(monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            handshake = "succeeded"
            break
        if event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                     zmq.EVENT_HANDSHAKE_FAILED_AUTH):
            handshake = "failed"
            break
    result[f"{mode} handshake"] = handshake
    item = WireItem(components={"well": "A02"}, step_index=0, step_name="injected",
                    shape=(64, 64), dtype=WireDtype.UINT16,
                    pixels=InlinePixels(frame=1, nbytes=64 * 64 * 2))
    for seq in range(1, 21):
        batch = Batch(producer="intruder", seq=seq, saved_at=time.time(), sent_at=time.time(),
                      delivery=DeliveryMode.LIVE,
                      display=display_to_wire(default_display()), items=(item,))
        pub.send_multipart([encode_message(batch), bytes(64 * 64 * 2)])
    pub.disable_monitor()
    monitor.close(0)
    pub.close(0)
result["answered"] = answered
context.term()
print(json.dumps(result))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_cannot_control_read_or_feed_a_viewer(ports: Callable[[int], int]) -> None:
    port = ports(1)
    with NapariStreamVisualizer(config(port), title="owner", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        visualizer.save_batch([np.full((64, 64), 7, np.uint16)], [{"well": "A01"}])
        wait_until(lambda: displayed(visualizer) == 1, 60, "the first image")
        before = visualizer.status()
        assert before is not None
        producer = next(name for name, p in before.producers.items() if p.pool)
        viewer_public = KeyStore().local_server().keys.public.decode()  # no secret

        attack = subprocess.run(
            [sys.executable, "-c", ATTACK, str(port), viewer_public, producer],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert attack.returncode == 0, attack.stderr
        result = json.loads(attack.stdout)
        assert result["uid"] == 65534
        assert result["keys"] == "refused"
        assert result["answered"] == [], result["answered"]
        assert result["plain handshake"] == result["own keys handshake"] == "failed"

        after = visualizer.status()  # alive, and still this user's own
        assert after is not None and after.auth_denied >= 1
        assert after.images == before.images  # nothing injected
        assert after.producers[producer].pool == before.producers[producer].pool  # not detached
        assert "intruder" not in after.producers
        assert visualizer.layers().layers, "the viewer was cleared"
        visualizer.save_batch([np.full((64, 64), 9, np.uint16)], [{"well": "A01"}])
        wait_until(lambda: displayed(visualizer) == 2, 30, "this user's next image")


def displayed(visualizer: NapariStreamVisualizer) -> int:
    status = visualizer.status()
    return -1 if status is None else status.state.display.displayed
