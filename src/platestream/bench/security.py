"""What owner-only viewers cost: ``python -m platestream.bench.security``.

Every viewer is a CURVE server on loopback too (docs/protocol.md, Security), and named
pools are read with ``pread`` instead of a mapping. Measured in one run, each against its
plain counterpart:

- ``handshake``: a new connection and its first request-reply (what every CLI command and
  each producer's first contact pays), plain vs CURVE;
- ``request``: a request-reply of a 1 KiB header on an open connection (a ping, a sync);
- ``batch``: one-way messages of a 4 KiB header (a shared-memory batch's whole wire
  traffic: its pixels never touch the socket), messages per second;
- ``inline``: 8 MiB frames one way, GB/s (over loopback only when forced: inline is for
  remote viewers, which needed CURVE before too);
- ``named pool``: copying a plane out of a named pool with ``pread`` vs out of a mapping
  (1 MiB and 32 MiB planes).
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import zmq

from platestream.bench import report

MiB = 1 << 20


class _Pair:
    """Two connected sockets in one context, plain or CURVE (with a ZAP-free server)."""

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], kinds: tuple[int, int], curve: bool
    ):
        self.server = context.socket(kinds[0])
        self.client = context.socket(kinds[1])
        for sock in (self.server, self.client):
            sock.linger = 0
            sock.sndhwm = sock.rcvhwm = 0  # one thread sends all, then receives all
        if curve:
            server_public, server_secret = zmq.curve_keypair()
            client_public, client_secret = zmq.curve_keypair()
            self.server.curve_server = True
            self.server.curve_publickey, self.server.curve_secretkey = server_public, server_secret
            self.client.curve_serverkey = server_public
            self.client.curve_publickey, self.client.curve_secretkey = client_public, client_secret
        port = self.server.bind_to_random_port("tcp://127.0.0.1")
        self.client.connect(f"tcp://127.0.0.1:{port}")

    def close(self) -> None:
        self.server.close(0)
        self.client.close(0)


def _round_trip(pair: _Pair, payload: bytes) -> None:
    pair.client.send(payload)
    frames = pair.server.recv_multipart()
    pair.server.send_multipart([*frames[:-1], payload])
    pair.client.recv()


def measure_sockets(
    requests: int = 2000, batches: int = 20000, inline_mib: int = 8
) -> dict[str, Any]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    results: dict[str, Any] = {}
    header = b"x" * 1024
    try:
        for curve in (False, True):
            mode = "curve" if curve else "plain"
            times = []
            for _ in range(50):
                started = time.perf_counter()
                pair = _Pair(context, (zmq.ROUTER, zmq.REQ), curve)
                _round_trip(pair, header)
                times.append(time.perf_counter() - started)
                pair.close()
            results[f"handshake_ms_{mode}"] = statistics.median(times) * 1e3
            pair = _Pair(context, (zmq.ROUTER, zmq.REQ), curve)
            _round_trip(pair, header)
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                _round_trip(pair, header)
                times.append(time.perf_counter() - started)
            pair.close()
            results[f"request_us_{mode}"] = statistics.median(times) * 1e6
            pair = _Pair(context, (zmq.PULL, zmq.PUSH), curve)
            _round_trip_push(pair)
            batch = b"y" * 4096
            started = time.perf_counter()
            for _ in range(batches):
                pair.client.send(batch)
            for _ in range(batches):
                pair.server.recv()
            results[f"batch_per_s_{mode}"] = batches / (time.perf_counter() - started)
            frame = np.ones(inline_mib * MiB, np.uint8)
            frames = max(8, 512 // inline_mib)
            started = time.perf_counter()
            for _ in range(frames):
                pair.client.send(memoryview(frame.data), copy=False)
                pair.server.recv(copy=False)
            results[f"inline_gbs_{mode}"] = (
                frames * frame.nbytes / (time.perf_counter() - started) / 1e9
            )
            pair.close()
    finally:
        context.term()
    for name in ("handshake_ms", "request_us"):
        results[f"{name}_ratio"] = results[f"{name}_curve"] / results[f"{name}_plain"]
    for name in ("batch_per_s", "inline_gbs"):
        results[f"{name}_ratio"] = results[f"{name}_curve"] / results[f"{name}_plain"]
    return results


def _round_trip_push(pair: _Pair) -> None:
    """The first message through: the connection (and its handshake) is up."""
    pair.client.send(b"warm")
    pair.server.recv()


def measure_named_pool(
    sizes_mib: tuple[int, ...] = (1, 32), total_mib: int = 1024
) -> dict[str, Any]:
    """Copying planes out of a /dev/shm file: through a mapping vs with pread."""
    results: dict[str, Any] = {}
    path = f"/dev/shm/psm_bench_{os.getpid()}"
    size = max(sizes_mib) * MiB
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.unlink(path)
        os.ftruncate(fd, size)
        os.posix_fallocate(fd, 0, size)
        mapping = mmap.mmap(fd, size)
        mapping.write(np.random.default_rng(0).integers(0, 255, size, np.uint8).tobytes())
        for mib in sizes_mib:
            nbytes = mib * MiB
            out = np.empty(nbytes, np.uint8)
            source = np.ndarray((nbytes,), np.uint8, mapping, 0)
            reps = max(4, total_mib // mib)
            best_map = best_read = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(reps):
                    np.copyto(out, source)
                best_map = min(best_map, time.perf_counter() - started)
                started = time.perf_counter()
                for _ in range(reps):
                    os.preadv(fd, [memoryview(out.data)], 0)
                best_read = min(best_read, time.perf_counter() - started)
            del source
            results[f"map_gbs_{mib}"] = reps * nbytes / best_map / 1e9
            results[f"pread_gbs_{mib}"] = reps * nbytes / best_read / 1e9
            results[f"ratio_{mib}"] = results[f"pread_gbs_{mib}"] / results[f"map_gbs_{mib}"]
        mapping.close()
    finally:
        os.close(fd)
    return results


def run(quick: bool = False) -> dict[str, Any]:
    if quick:
        return {
            "sockets": measure_sockets(requests=50, batches=200, inline_mib=1),
            "named_pool": measure_named_pool((1,), total_mib=8),
        }
    return {"sockets": measure_sockets(), "named_pool": measure_named_pool()}


def render(results: dict[str, Any]) -> str:
    s, n = results["sockets"], results["named_pool"]
    rows = [
        "owner-only viewers: CURVE on loopback, against plain ZeroMQ (same run)",
        f"  {'':38} {'plain':>10} {'CURVE':>10} {'CURVE/plain':>12}",
        f"  {'new connection + first request (ms)':38} {s['handshake_ms_plain']:10.2f} "
        f"{s['handshake_ms_curve']:10.2f} {s['handshake_ms_ratio']:12.2f}",
        f"  {'request-reply, 1 KiB (us, median)':38} {s['request_us_plain']:10.1f} "
        f"{s['request_us_curve']:10.1f} {s['request_us_ratio']:12.2f}",
        f"  {'shm batch header, 4 KiB (msgs/s)':38} {s['batch_per_s_plain']:10.0f} "
        f"{s['batch_per_s_curve']:10.0f} {s['batch_per_s_ratio']:12.2f}",
        f"  {'inline frames (GB/s)':38} {s['inline_gbs_plain']:10.2f} "
        f"{s['inline_gbs_curve']:10.2f} {s['inline_gbs_ratio']:12.2f}",
        f"named pools read with pread, against a mapping (GB/s)\n"
        f"  {'':38} {'mapping':>10} {'pread':>10} {'pread/map':>12}",
    ]
    for key in sorted(k for k in n if k.startswith("ratio_")):
        mib = key.split("_")[1]
        rows.append(
            f"  {mib + ' MiB planes':38} {n[f'map_gbs_{mib}']:10.2f} "
            f"{n[f'pread_gbs_{mib}']:10.2f} {n[key]:12.2f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.security")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return report(run(args.quick), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
