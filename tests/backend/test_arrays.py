"""Array intake: numpy as is, other libraries by protocol, never imported by us."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

from platestream.backend._host_arrays import contiguous_bytes, to_host_array, wire_dtype
from platestream.schemas import WireDtype

from .helpers import run_python


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.uint16).reshape(3, 4),
        np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],  # non-contiguous
        np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
        np.arange(12, dtype=np.uint8).reshape(3, 4)[::-1],  # negative strides
        np.ones((2, 2), dtype=bool),
        np.ones((2, 2), dtype=np.complex64),
        np.array(3.0),
    ],
    ids=["uint16", "strided", "fortran", "reversed", "bool", "complex", "0d"],
)
def test_numpy_passes_through_and_serialises_in_c_order(array: np.ndarray) -> None:
    host = to_host_array(array)
    assert host is array
    raw = contiguous_bytes(host)
    assert bytes(raw) == np.ascontiguousarray(array).tobytes()


def test_big_endian_becomes_little_endian() -> None:
    # A little-endian uint16 streamed first: the dtype cache must not let '>u2' through.
    assert wire_dtype(to_host_array(np.zeros(2, "<u2")).dtype) is WireDtype.UINT16
    array = np.arange(6, dtype=">u2").reshape(2, 3)
    host = to_host_array(array)
    assert host.dtype.str == "<u2"
    np.testing.assert_array_equal(host, array)
    assert wire_dtype(host.dtype) is WireDtype.UINT16


@pytest.mark.parametrize(
    "bad", [[1, 2, 3], "pixels", object(), np.array(["a", "b"]), np.zeros(3, dtype=object)]
)
def test_unsupported_input_is_a_clear_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="cannot stream"):
        to_host_array(bad)


def test_dask_arrays_are_computed_through_array_protocol() -> None:
    da = pytest.importorskip("dask.array")
    lazy = da.arange(16, dtype=np.uint16, chunks=4).reshape(4, 4) * 2
    np.testing.assert_array_equal(to_host_array(lazy), np.arange(16).reshape(4, 4) * 2)


class _DLPackOnly:
    """A CPU array that offers only DLPack (as JAX and torch CPU tensors do)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)


def test_dlpack_arrays_are_taken_without_a_copy() -> None:
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    host = to_host_array(_DLPackOnly(base))
    assert np.shares_memory(host, base)


def _fake_module(name: str, cls: type) -> types.ModuleType:
    module = types.ModuleType(name)
    cls.__module__ = name
    setattr(module, cls.__name__, cls)
    return module


def test_torch_like_tensors_are_detached_and_moved_to_host(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Tensor:
        def __init__(self, array: np.ndarray) -> None:
            self.array = array

        def detach(self) -> Tensor:
            calls.append("detach")
            return self

        def cpu(self) -> Tensor:
            calls.append("cpu")
            return self

        def numpy(self) -> np.ndarray:
            return self.array

    monkeypatch.setitem(sys.modules, "torch", _fake_module("torch", Tensor))
    out = to_host_array(Tensor(np.ones((2, 2), np.float32)))
    assert calls == ["detach", "cpu"] and out.shape == (2, 2)


def test_cupy_like_arrays_are_fetched_with_get(monkeypatch: pytest.MonkeyPatch) -> None:
    class ndarray:
        def get(self) -> np.ndarray:
            return np.full((2, 2), 7, np.int16)

    monkeypatch.setitem(sys.modules, "cupy", _fake_module("cupy", ndarray))
    assert to_host_array(ndarray()).sum() == 28


def test_gpu_dlpack_arrays_fall_back_to_array_protocol() -> None:
    class DeviceArray:
        def __dlpack__(self, **kwargs: Any) -> Any:
            raise AssertionError("a CUDA buffer cannot be read by numpy")

        def __dlpack_device__(self) -> tuple[int, int]:
            return (2, 0)  # kDLCUDA

        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            return np.zeros((3, 3), np.float32)

    assert to_host_array(DeviceArray()).shape == (3, 3)


def test_importing_and_using_the_backend_imports_no_array_library() -> None:
    # napari (through config's colormaps) may import dask itself; we only add nothing.
    code = (
        "import sys, numpy as np\n"
        "import platestream.config\n"
        "libraries = ('torch', 'cupy', 'jax', 'dask')\n"
        "before = {m for m in libraries if m in sys.modules}\n"
        "from platestream.backend import NapariStreamingBackend\n"
        "from platestream.backend._host_arrays import to_host_array\n"
        "to_host_array(np.zeros((2, 2)))\n"
        "print(sorted(m for m in libraries if m in sys.modules and m not in before))\n"
    )
    assert run_python(code) == "[]"
