"""Only the owner controls a viewer: this user's keys on loopback, bounded held requests,
pools detached only by their producer, and attaches that never block or trust a file
another process can shrink."""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zmq

from platestream.backend import (
    ControlTimeout,
    KeyPermissionError,
    KeyStore,
    NapariStreamingBackend,
    Receiver,
    credentials_for,
    request_once,
)
from platestream.backend.shm import SlotPool
from platestream.layering import ImageItem
from platestream.schemas import (
    Attach,
    Attached,
    Detach,
    DropReason,
    Error,
    ErrorCode,
    Ok,
    Ping,
    Pong,
    PoolInfo,
    PoolKind,
    StatusRequest,
    Sync,
    WireDtype,
    WireItem,
    decode_message,
    encode_message,
)

from ..credentials import credentialed
from .helpers import config, run_python
from .raw_client import RawClient, assert_still_serving, dropped

Make = Callable[..., NapariStreamingBackend]
ITEM = ImageItem({"site": 1}, 0, "s", (8, 8), "uint8")


# --------------------------------------------------------------------------- the keys


def test_this_users_keys_are_made_on_first_use_and_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    client = store.local_client()
    server = store.local_server()
    assert client.server_public == server.keys.public  # the producer pins this viewer
    assert client.keys.public in server.allowed  # and this viewer lets the producer in
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    for name in ("producer", "viewer"):
        secret = store.directory / f"{name}.key_secret"
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert list(store.directory.glob(".new-*")) == []  # no scratch folder left
    assert store.local_client() == client  # made once, then found


def test_a_secret_others_can_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure_local()
    secret = tmp_path / "producer.key_secret"
    os.chmod(secret, 0o644)
    with pytest.raises(KeyPermissionError, match=rf"{secret}.*0644.*chmod 600"):
        store.local_client()


def test_processes_making_the_keys_at_once_agree_on_one_pair(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from platestream.backend import KeyStore\n"
        "c = KeyStore(Path(sys.argv[1])).local_client()\n"
        "print(c.keys.public.decode(), c.server_public.decode())\n"
    )
    script = tmp_path / "make.py"
    script.write_text(code)
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "keys")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(outputs) == 1  # every process uses the same pair, and it is the stored one
    store = KeyStore(tmp_path / "keys")
    assert outputs == {
        f"{store.pair('producer').public.decode()} {store.pair('viewer').public.decode()}"
    }


def test_tools_and_producers_find_the_credentials_by_themselves(
    receiver: Receiver, make_backend: Make
) -> None:
    assert credentials_for("127.0.0.1") == KeyStore().local_client()
    reply = request_once("127.0.0.1", receiver.data_port, Ping(), timeout_s=5)
    assert isinstance(reply.message, Pong)
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    assert backend.save_batch([np.full((8, 8), 3, np.uint8)], [ITEM]).sent == 1
    assert receiver.wait(5) and receiver.take()[0].images[0].data[0, 0] == 3


def test_a_client_without_this_users_keys_gets_no_answer(receiver: Receiver) -> None:
    """Plain text, or CURVE with keys of its own: the handshake fails, nothing is served."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stranger_public, stranger_secret = zmq.curve_keypair()
    try:
        for curve in (False, True):
            req = context.socket(zmq.REQ)
            req.linger = 0
            if curve:  # knows the viewer's public key (it is no secret) but is not allowed
                req.curve_serverkey = receiver.curve.keys.public
                req.curve_publickey, req.curve_secretkey = stranger_public, stranger_secret
            req.connect(f"tcp://127.0.0.1:{receiver.control_port}")
            req.send(encode_message(StatusRequest()))
            assert not req.poll(1500), f"a {'CURVE' if curve else 'plain'} stranger was answered"
            req.close(0)
        assert receiver.stats().auth_denied >= 1
    finally:
        context.term()


class Squatter:
    """Something on a viewer's ports that answers every request with a forged pong (in
    plain text, or with CURVE keys of its own: another user's viewer)."""

    def __init__(self, pong: Pong, curve: bool) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.data = self.context.socket(zmq.SUB)
        self.router = self.context.socket(zmq.ROUTER)
        for sock in (self.data, self.router):
            sock.linger = 0
            if curve:
                public, secret = zmq.curve_keypair()
                sock.curve_server = True
                sock.curve_publickey, sock.curve_secretkey = public, secret
        self.port = self.data.bind_to_random_port("tcp://127.0.0.1", 20000, 59000)
        self.router.bind(f"tcp://127.0.0.1:{self.port + 1000}")
        self.pong = dataclasses.replace(
            pong, viewer_id="forged", data_port=self.port, control_port=self.port + 1000
        )
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.router.poll(50):
                frames = self.router.recv_multipart()
                self.router.send_multipart([*frames[:-1], encode_message(self.pong)])
                self.answered += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.router.close(0)
        self.data.close(0)
        self.context.term()


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "other keys"])
def test_a_squatter_is_not_taken_for_this_users_viewer(
    receiver: Receiver, make_backend: Make, curve: bool
) -> None:
    """It cannot prove it holds this user's viewer key: neither the manager, the CLI's
    requests nor a producer take its pong."""
    from platestream.viewer.manager import Holder, inspect

    real = request_once("127.0.0.1", receiver.data_port, Ping(), timeout_s=5).message
    assert isinstance(real, Pong)
    squatter = Squatter(real, curve)
    try:
        state = inspect(squatter.port, timeout_s=1.5)
        assert state.holder is Holder.FOREIGN and state.pong is None
        with pytest.raises(ControlTimeout):
            request_once("127.0.0.1", squatter.port, StatusRequest(), timeout_s=1.0)
        backend = make_backend(config(squatter.port, delivery="lossless"))
        assert not backend.connect(timeout_s=1.5)
        assert squatter.answered == 0  # no request ever got through the handshake
    finally:
        squatter.close()


# ------------------------------------------------------------- held requests, bounded


def test_a_flood_of_held_requests_does_not_lock_out_a_new_producer(
    receiver: Receiver, make_backend: Make
) -> None:
    backend = make_backend(config(receiver.data_port))
    started = time.monotonic()
    assert backend.connect(timeout_s=10)
    baseline_s = time.monotonic() - started
    backend.close()

    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    flood = credentialed(context.socket(zmq.DEALER))
    flood.linger = 0
    flood.connect(f"tcp://127.0.0.1:{receiver.control_port}")
    try:
        sent = 0
        for i in range(4096):  # pings whose probes never come, and syncs that wait
            flood.send_multipart(
                [b"", encode_message(Ping(producer="f", token=f"t{i}", wait_s=30))]
            )
            flood.send_multipart([b"", encode_message(Sync(producer="f", after=5, wait_s=30))])
            sent += 2
        flood.send_multipart([b"", encode_message(StatusRequest())])  # answered at once
        answered_early = 0
        while True:  # replies come in order of handling: the status one comes last
            assert flood.poll(30000), f"{answered_early} of {sent} held requests answered"
            reply = decode_message(flood.recv_multipart()[-1], port="reply")
            if reply.TYPE == "status_report":
                break
            answered_early += 1
        assert answered_early == sent - 16  # the newest 16 are still held

        fresh = make_backend(config(receiver.data_port))
        started = time.monotonic()
        assert fresh.connect(timeout_s=10), "a new producer was locked out by the flood"
        flooded_s = time.monotonic() - started
        print(f"handshake: {baseline_s * 1000:.1f} ms alone, {flooded_s * 1000:.1f} ms flooded")
        assert fresh.save_batch([np.ones((8, 8), np.uint8)], [ITEM]).sent == 1
    finally:
        flood.close(0)
        context.term()


# ---------------------------------------------------------------------------- pools


def _attach(client: RawClient, pool: SlotPool, key: str, producer: str = "raw") -> object:
    info = pool.segment.info()
    message = Attach(producer=producer, pid=os.getpid(), pool=info, key=key)
    reply = client.request(message)
    if info.kind is PoolKind.NAMED:
        pool.segment.unlink()
    return reply


def test_only_the_producer_that_attached_a_pool_can_detach_it(client: RawClient) -> None:
    key = secrets.token_hex(16)
    pool, other_pool = SlotPool(1 << 20), SlotPool(1 << 20)
    try:
        assert isinstance(_attach(client, pool, key), Attached)
        other = secrets.token_hex(16)
        refused = client.request(Detach(producer="raw", key=other))
        assert isinstance(refused, Error) and refused.code is ErrorCode.REFUSED
        hijack = _attach(client, other_pool, other)
        assert isinstance(hijack, Error) and hijack.code is ErrorCode.REFUSED
        assert client.receiver.stats().producers["raw"].pool == pool.segment.id
        assert isinstance(client.request(Detach(producer="raw", key=key)), Ok)
        assert client.receiver.stats().producers["raw"].pool == ""
    finally:
        pool.close()
        other_pool.close()


def test_an_attach_naming_a_fifo_is_refused_at_once(client: RawClient, tmp_path: Path) -> None:
    """A FIFO with no writer would block an open() for as long as nobody writes to it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # our fd, a FIFO, listed in /proc
    try:
        info = PoolInfo(id="psm_fifo0", kind=PoolKind.MEMFD, size=1 << 20, slots=16, fd=fd)
        started = time.monotonic()
        reply = client.request(Attach(producer="raw", pid=os.getpid(), pool=info, key="0" * 32))
        assert isinstance(reply, Error) and reply.code is ErrorCode.REFUSED
        assert "not a regular file" in reply.message
        assert time.monotonic() - started < 5  # answered, not stuck (the request's timeout)
    finally:
        os.close(fd)
    named = Path("/dev/shm") / "psm_fifo1"
    os.mkfifo(named)
    try:
        info = PoolInfo(id="psm_fifo1", kind=PoolKind.NAMED, size=1 << 20, slots=16, fd=-1)
        reply = client.request(Attach(producer="raw", pid=os.getpid(), pool=info, key="0" * 32))
        assert isinstance(reply, Error) and reply.code is ErrorCode.REFUSED
    finally:
        named.unlink(missing_ok=True)
    assert_still_serving(client)


def test_a_named_pool_shrunk_by_its_owner_drops_images_and_never_kills(
    client: RawClient,
) -> None:
    key = secrets.token_hex(16)
    pool = SlotPool(1 << 20, PoolKind.NAMED)
    try:
        assert isinstance(_attach(client, pool, key), Attached)
        pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)

        def item(seq: int) -> WireItem:
            slot = pool.acquire(pixels.nbytes, "raw", seq, live=True, released=seq - 1)
            assert slot is not None
            shm = pool.write(slot, pixels, seq, "raw")
            return WireItem(
                components={"site": 1},
                step_index=0,
                step_name="s",
                shape=pixels.shape,
                dtype=WireDtype.UINT16,
                pixels=shm,
            )

        client.send([client.batch((item(client.seq + 1),))])
        (batch,) = client.receiver.take()
        np.testing.assert_array_equal(batch.images[0].data, pixels)  # read, not mapped
        shrunk = item(client.seq + 1)
        os.ftruncate(pool.segment.fd, 4096)  # the owner cuts the pool under the viewer
        client.send([client.batch((shrunk,))])
        assert dropped(client.receiver, DropReason.UNKNOWN_SLOT) == 1
        assert_still_serving(client)
    finally:
        pool.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_cannot_read_this_users_keys(receiver: Receiver) -> None:
    """Run as uid nobody: the key store is out of reach, so no credential to present."""
    out = run_python(
        "import os\n"
        "from platestream.backend import KeyStore\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    KeyStore().local_client()\n"
        "except PermissionError as err:\n"
        "    print('refused', type(err).__name__)\n",
        timeout_s=60,
    )
    assert out.startswith("refused"), out
