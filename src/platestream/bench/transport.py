"""Transport benchmark: ``python -m platestream.bench.transport``.

For 8 MiB and 32 MiB frames it measures, in one run:

- ``plain``: one ``np.copyto`` between preallocated arrays - the limit;
- ``shm``: our shared-memory path, producer array to receiver array, with the receiver in
  another process working as the napari viewer does (lossless; each frame's pixels lent
  to the display as a read-only array, then released; timed until acknowledged);
- ``shm copy``: the same, with the receiver copying every frame out into an array of its
  own (``ReceiverOptions(zero_copy=False)``, the library's default);
- ``fresh``: the reference design - a new segment per image, page-faulted on first
  write, opened, copied and unlinked by the receiver - written here as the baseline;
- ``inline``: our inline path over TCP loopback (forced ``transport = "inline"``);
- ``zmq``: bare libzmq over TCP loopback, the same frames, no platestream at all - the
  limit the inline path runs into (its receiver has our receivers' malloc thresholds,
  see ``platestream.backend.shm._buffers``);

and the time of a live ``save_batch`` of 16 images with no viewer listening. Each
throughput is the best of a few runs (the machine is shared; the best run is the one
least disturbed). Prints a table with ratios against the baselines of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import platform
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import zmq

from platestream.backend import NapariStreamingBackend
from platestream.backend.shm import keep_large_buffers, name_prefix, shm_unlink
from platestream.bench import report
from platestream.config import NapariStreamingConfig
from platestream.layering import ImageItem

MiB = 1 << 20
FRAME_MIB = (8, 32)
BYTES_PER_RUN = 1 << 30  # frames per timed run: 1 GiB worth
RUNS = 3


def _frame(mib: int) -> np.ndarray:
    side = int((mib * MiB // 2) ** 0.5)
    return np.random.default_rng(mib).integers(0, 65535, (side, side), dtype=np.uint16)


def _gbs(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def _best(runs: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(runs))


def plain_copy(frame: np.ndarray, frames: int) -> float:
    target = np.empty_like(frame)
    np.copyto(target, frame)  # fault the target in first: this is the copy's limit
    started = time.perf_counter()
    for _ in range(frames):
        np.copyto(target, frame)
    return _gbs(frame.nbytes * frames, time.perf_counter() - started)


# ------------------------------------------------------------------ our paths


@contextlib.contextmanager
def _receiver_process(*options: str) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "platestream.backend.bare_receiver", "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        if not ready:
            raise RuntimeError("the receiver did not start")
        yield int(json.loads(proc.stdout.readline())["data_port"])
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def streamed(frame: np.ndarray, frames: int, transport: str, copy: bool = False) -> float:
    """Frames/s through our backend to a receiver process, until all are acknowledged.
    The receiver works as the viewer does - shared-memory pixels lent, then released - or
    with ``copy`` copies them out into arrays of its own."""
    with _receiver_process(*(["--copy"] if copy else [])) as port:
        config = NapariStreamingConfig(
            napari_host="127.0.0.1",
            napari_port=port,
            delivery="lossless",
            transport=transport,
            shm_pool_mb=256,
        )
        backend = NapariStreamingBackend(config)
        try:
            if not backend.connect(timeout_s=30):
                raise RuntimeError("no handshake with the receiver")
            (link,) = backend.links().values()
            items = [ImageItem({"site": i}, 0, "bench", frame.shape, "uint16") for i in range(8)]

            def one_run() -> float:
                started = time.perf_counter()
                for index in range(frames):
                    report = backend.save_batch([frame], [items[index % 8]])
                    if report.sent != 1:
                        raise RuntimeError(f"frame not sent: {report}")
                if not link.flush(60):
                    raise RuntimeError("the receiver did not acknowledge every frame")
                return _gbs(frame.nbytes * frames, time.perf_counter() - started)

            one_run()  # warm up: carve the slots, fault the receiver's allocator in
            return _best(RUNS, one_run)
        finally:
            backend.close()


# ------------------------------------------------------ the reference's design


def _shm_open(name: str, flags: int) -> int:
    import _posixshmem  # type: ignore[import-not-found]

    fd: int = _posixshmem.shm_open("/" + name, flags, mode=0o600)
    return fd


def _baseline_receiver(port: int) -> None:
    """Child: open each announced segment, copy it out, close and unlink it, ack."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.connect(f"tcp://127.0.0.1:{port}")
    while True:
        message = json.loads(sock.recv())
        if message is None:
            break
        fd = _shm_open(message["name"], os.O_RDONLY)
        buffer = mmap.mmap(fd, message["nbytes"], prot=mmap.PROT_READ)
        os.close(fd)
        source = np.ndarray(message["shape"], dtype=message["dtype"], buffer=buffer)
        copy = np.empty_like(source)
        np.copyto(copy, source)
        del source
        buffer.close()
        shm_unlink(message["name"])
        sock.send(b"ok")
    sock.close(0)
    context.term()


def _bare_zmq_receiver(port: int) -> None:
    """Child: receive frames, acknowledge each; an empty frame ends it. With the same
    allocator thresholds as our receivers, so the comparison is like for like."""
    keep_large_buffers()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.connect(f"tcp://127.0.0.1:{port}")
    while len(sock.recv(copy=False)):
        sock.send(b"ok")
    sock.close(0)
    context.term()


@contextlib.contextmanager
def _paired_child(role: str) -> Iterator[zmq.Socket[bytes]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.linger = 0
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    child = subprocess.Popen([sys.executable, "-m", "platestream.bench.transport", role, str(port)])
    try:
        yield sock
    finally:
        sock.send(b"null" if role == "--baseline-receiver" else b"")
        child.wait(30)
        sock.close(0)
        context.term()


def bare_zmq(frame: np.ndarray, frames: int, in_flight: int = 8) -> float:
    """libzmq alone: the frames over TCP loopback, ``in_flight`` unacknowledged at most."""
    with _paired_child("--bare-zmq-receiver") as sock:

        def one_run() -> float:
            started, pending = time.perf_counter(), 0
            for _ in range(frames):
                if pending == in_flight:
                    sock.recv()
                    pending -= 1
                sock.send(frame.data, copy=False)
                pending += 1
            for _ in range(pending):
                sock.recv()
            return _gbs(frame.nbytes * frames, time.perf_counter() - started)

        one_run()
        return _best(RUNS, one_run)


def fresh_segments(frame: np.ndarray, frames: int, in_flight: int = 8) -> float:
    """The reference design: a new segment per image (its pages faulted on first write)."""
    names: list[str] = []
    with _paired_child("--baseline-receiver") as sock:

        def one_run() -> float:
            started, pending = time.perf_counter(), 0
            for _ in range(frames):
                if pending == in_flight:
                    sock.recv()
                    pending -= 1
                name = f"{name_prefix()}b{secrets.token_hex(6)}"
                names.append(name)
                fd = _shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR)
                os.ftruncate(fd, frame.nbytes)
                buffer = mmap.mmap(fd, frame.nbytes)
                os.close(fd)
                target = np.ndarray(frame.shape, dtype=frame.dtype, buffer=buffer)
                np.copyto(target, frame)
                del target
                buffer.close()
                sock.send(
                    json.dumps(
                        {
                            "name": name,
                            "nbytes": frame.nbytes,
                            "shape": frame.shape,
                            "dtype": frame.dtype.str,
                        }
                    ).encode()
                )
                pending += 1
            for _ in range(pending):
                sock.recv()
            return _gbs(frame.nbytes * frames, time.perf_counter() - started)

        try:
            one_run()
            return _best(RUNS, one_run)
        finally:
            for name in names:
                shm_unlink(name)  # the child unlinked them; this only guards a failed run


# -------------------------------------------------------- save_batch, no viewer


def save_batch_without_viewer(calls: int = 200) -> dict[str, float]:
    """Milliseconds per live save_batch of 16 x 2 MiB images, nobody listening."""
    with socketless_port() as port:
        backend = NapariStreamingBackend(
            NapariStreamingConfig(napari_host="127.0.0.1", napari_port=port)
        )
        arrays = [np.ones((1024, 1024), np.uint16) for _ in range(16)]
        items = [ImageItem({"site": i}, 0, "bench", (1024, 1024), "uint16") for i in range(16)]
        times = []
        try:
            for _ in range(calls):
                started = time.perf_counter()
                backend.save_batch(arrays, items)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            backend.close()
    return {"first_ms": times[0], "median_ms": float(np.median(times)), "max_ms": max(times)}


@contextlib.contextmanager
def socketless_port() -> Iterator[int]:
    """A port pair with nothing listening (held free by nothing; good enough here)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield min(port, 64535)


# ---------------------------------------------------------------------- report


def run(
    frame_mib: tuple[int, ...] = FRAME_MIB, bytes_per_run: int = BYTES_PER_RUN
) -> dict[str, Any]:
    """Every figure of one benchmark run, as a dict (GB/s = 1e9 bytes per second)."""
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "frames": {},
    }
    for mib in frame_mib:
        frame = _frame(mib)
        frames = max(4, bytes_per_run // frame.nbytes)
        row = {
            "plain": max(plain_copy(frame, frames) for _ in range(RUNS)),
            "shm": streamed(frame, frames, "shm"),
            "shm_copy": streamed(frame, frames, "shm", copy=True),
            "fresh": fresh_segments(frame, frames),
            "inline": streamed(frame, frames, "inline"),
            "zmq": bare_zmq(frame, frames),
        }
        row["shm/plain"] = row["shm"] / row["plain"]
        row["shm_copy/plain"] = row["shm_copy"] / row["plain"]
        row["shm/fresh"] = row["shm"] / row["fresh"]
        row["inline/zmq"] = row["inline"] / row["zmq"]
        results["frames"][f"{mib} MiB"] = row
    results["save_batch_no_viewer"] = save_batch_without_viewer()
    return results


def _verdicts(results: dict[str, Any]) -> list[str]:
    big = results["frames"].get("32 MiB")
    lines = []
    if big:
        lines.append(f"shm >= 10 GB/s at 32 MiB: {big['shm']:.1f} GB/s")
        lines.append(f"shm >= 0.5 x plain copy at 32 MiB: {big['shm/plain']:.2f} x")
        lines.append(f"shm >= 10 x fresh segments at 32 MiB: {big['shm/fresh']:.1f} x")
        lines.append(
            f"inline >= 2 GB/s at 32 MiB: {big['inline']:.1f} GB/s "
            f"(bare libzmq: {big['zmq']:.1f} GB/s)"
        )
    no_viewer = results["save_batch_no_viewer"]
    lines.append(
        f"save_batch(16) with no viewer < 5 ms: median {no_viewer['median_ms']:.2f} "
        f"ms, max {no_viewer['max_ms']:.2f} ms"
    )
    return lines


def render(results: dict[str, Any]) -> str:
    header = f"{'frame':>8} {'plain':>8} {'shm':>8} {'shm copy':>9} {'fresh':>8} {'inline':>8}"
    header += f" {'zmq':>8}"
    header += f" {'shm/plain':>10} {'shm/fresh':>10} {'inline/zmq':>11}"
    lines = ["throughput in GB/s (1e9 bytes/s), best of runs", header]
    for name, row in results["frames"].items():
        lines.append(
            f"{name:>8} {row['plain']:8.2f} {row['shm']:8.2f} {row['shm_copy']:9.2f} "
            f"{row['fresh']:8.2f} "
            f"{row['inline']:8.2f} {row['zmq']:8.2f} {row['shm/plain']:10.2f} "
            f"{row['shm/fresh']:10.1f} {row['inline/zmq']:11.2f}"
        )
    lines += ["", *_verdicts(results)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platestream.bench.transport")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--baseline-receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-zmq-receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_receiver:
        _baseline_receiver(args.baseline_receiver)
        return 0
    if args.bare_zmq_receiver:
        _bare_zmq_receiver(args.bare_zmq_receiver)
        return 0
    results = run()
    return report(results, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
