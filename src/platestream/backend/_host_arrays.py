"""Turn whatever a pipeline step returns into a host numpy array, importing nothing new.

numpy arrays pass through. torch, CuPy, JAX and dask arrays are recognised by the module of
their type - so none of those libraries is ever imported here - and brought to host memory
by their own methods, DLPack or ``__array__``. Anything else is a TypeError that says what
was given. Strides are kept: the shared-memory writer copies any layout in one pass.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from platestream.schemas import WireDtype

ALLOWED = frozenset(d.value for d in WireDtype)
_DLPACK_CPU = 1  # kDLCPU in DLPack's device enum


def _library(data: object) -> str:
    return type(data).__module__.partition(".")[0]


def _from_torch(tensor: Any) -> np.ndarray:
    # detach: a tensor that requires grad refuses .numpy(); cpu: a no-op on CPU tensors.
    return np.asarray(tensor.detach().cpu().numpy())


def _from_cupy(array: Any) -> np.ndarray:
    return np.asarray(array.get())


def _from_dlpack_or_array(data: Any) -> np.ndarray:
    device = getattr(data, "__dlpack_device__", None)
    if device is not None and device()[0] == _DLPACK_CPU:
        try:
            return np.from_dlpack(data)
        except (BufferError, TypeError, RuntimeError):
            pass  # e.g. a read-only or exotic-dtype buffer: __array__ still works
    if hasattr(data, "__array__"):
        return np.asarray(data)
    raise TypeError(f"cannot bring a {type(data).__module__}.{type(data).__qualname__} to host")


def to_host_array(data: object) -> np.ndarray:
    """A numpy view or copy of ``data`` in host memory; TypeError for unsupported types."""
    if isinstance(data, np.ndarray):
        array = data
    else:
        library = _library(data)
        if library == "torch" and "torch" in sys.modules and hasattr(data, "detach"):
            array = _from_torch(data)
        elif library == "cupy" and "cupy" in sys.modules and hasattr(data, "get"):
            array = _from_cupy(data)
        elif hasattr(data, "__dlpack__") or hasattr(data, "__array__"):
            # JAX, dask, numpy subclasses-by-protocol, CPU torch without torch quirks, ...
            array = _from_dlpack_or_array(data)
        else:
            raise TypeError(
                f"cannot stream a {type(data).__module__}.{type(data).__qualname__}: expected "
                "a numpy, torch, CuPy, JAX or dask array, or anything with __array__ or "
                "__dlpack__"
            )
    return wire_ready(array)


_WIRE_DTYPES: dict[np.dtype[Any], WireDtype] = {}


def wire_dtype(dtype: np.dtype[Any]) -> WireDtype:
    """The wire's name of a streamable dtype (ValueError for others); cached, as
    ``dtype.name`` is computed in Python on every call."""
    known = _WIRE_DTYPES.get(dtype)
    if known is None:
        known = _WIRE_DTYPES[dtype] = WireDtype(dtype.name)
    return known


def wire_ready(array: np.ndarray) -> np.ndarray:
    """Check the dtype is streamable and make it little-endian (the wire's byte order)."""
    dtype = array.dtype
    if dtype in _WIRE_DTYPES and dtype.byteorder != ">":
        return array  # seen before: streamable, and native order is little-endian here
    if dtype.name not in ALLOWED:
        raise TypeError(
            f"cannot stream arrays of dtype {array.dtype}: expected one of {sorted(ALLOWED)}"
        )
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def contiguous_bytes(array: np.ndarray) -> memoryview:
    """The array's pixels as one C-ordered buffer, copying only if its layout needs it."""
    # Through a uint8 view: memoryview cannot cast numpy's complex formats ('Zf') itself.
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data
