"""copy_into: large frames are copied in parts on several threads, exactly."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from platestream.backend.shm import _copying as copying
from platestream.backend.shm._pool import SlotPool


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Pretend the machine has two cores; record which thread copied which part."""
    monkeypatch.setattr(copying, "_cores", lambda: 2)
    calls: list[tuple[str, tuple[int, ...]]] = []
    real = copying._copy

    def spy(target: np.ndarray, source: np.ndarray) -> None:
        calls.append((threading.current_thread().name, source.shape))
        real(target, source)

    monkeypatch.setattr(copying, "_copy", spy)
    return calls


def _frame(shape: tuple[int, ...], dtype: str = "uint16") -> np.ndarray:
    return np.random.default_rng(7).integers(0, 60000, shape).astype(dtype)


def test_a_large_frame_is_copied_in_parts_on_two_threads(two_cores: list) -> None:
    source = _frame((2049, 2048))  # 8 MiB and a row, an odd split
    target = np.zeros_like(source)
    copying.copy_into(target, source)
    np.testing.assert_array_equal(target, source)
    threads = {name for name, _ in two_cores}
    assert len(two_cores) == 2 and len(threads) == 2
    assert sum(shape[0] for _, shape in two_cores) == 2049


def test_strided_sources_and_a_leading_axis_of_one_are_split_too(two_cores: list) -> None:
    base = _frame((2, 2048, 2048))
    for source in (base[0].T, base[:, ::2, :], base[1:, :, :]):
        target = np.zeros(source.shape, source.dtype)
        two_cores.clear()
        copying.copy_into(target, source)
        np.testing.assert_array_equal(target, source)
        assert len(two_cores) == 2, source.shape


def test_small_frames_and_one_core_are_copied_by_the_caller(
    two_cores: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _frame((512, 512))
    copying.copy_into(np.empty_like(small), small)
    monkeypatch.setattr(copying, "_cores", lambda: 1)
    large = _frame((4096, 1024))
    copying.copy_into(np.empty_like(large), large)
    assert [name for name, _ in two_cores] == [threading.current_thread().name] * 2


def test_a_failing_part_raises_after_every_part_finished(two_cores: list) -> None:
    source = _frame((2048, 2048))
    target = np.zeros_like(source)
    target.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        copying.copy_into(target, source)
    with pytest.raises(TypeError):
        copying.copy_into(np.zeros(source.shape, np.float32), source)


def _copy_in_child(ok: multiprocessing.queues.Queue) -> None:  # type: ignore[name-defined]
    copying._cores = lambda: 2  # type: ignore[assignment]
    source = _frame((2048, 2048))
    target = np.zeros_like(source)
    copying.copy_into(target, source)
    ok.put(bool((target == source).all()))


def test_a_forked_child_copies_with_threads_of_its_own(two_cores: list) -> None:
    source = _frame((2048, 2048))
    copying.copy_into(np.empty_like(source), source)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_copy_in_child, args=(results,))
    child.start()
    try:
        assert results.get(timeout=60) is True
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(10)
    assert child.exitcode == 0


def test_the_pool_writes_a_large_frame_intact_through_the_split(two_cores: list) -> None:
    pool = SlotPool(64 << 20)
    try:
        source = _frame((2048, 4096))[:, ::2]  # 8 MiB, strided
        slot = pool.acquire(source.nbytes, "plane", 1, live=False)
        assert slot is not None
        ref = pool.write(slot, source, seq=1, plane="plane")
        stored = np.ndarray(
            source.shape, source.dtype, buffer=pool.segment.buffer, offset=ref.offset
        )
        np.testing.assert_array_equal(stored, source)
        assert len(two_cores) == 2
        del stored
    finally:
        pool.close()
