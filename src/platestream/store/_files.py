"""The run store's writes: whole chunks and metadata documents, without zarr's async store.

zarr-python 3 routes every chunk write through its event-loop thread and a worker thread
(``sync`` -> ``asyncio.to_thread``). On the 2-core machines our users run pipelines on,
those hand-offs cost 3-5 ms per chunk, more than encoding and writing the chunk itself
(measured: 6.0 ms per 256 x 256 uint16 plane through ``array[...] = plane``; 0.1 ms to
encode it with numcodecs and 0.8 ms to write the file). A run store writes one plane per
chunk, always whole, so the writer does what zarr would do for such a write without the
hand-offs: the codecs zarr declared for the array (``bytes`` little-endian, then
``blosc`` or ``zstd``) from numcodecs - the codec library under zarr's own - and the file
at the key zarr's metadata names, written to a temporary name and renamed into place.

The same holds for creating groups and arrays (3-6 ms each through zarr, 20-30 ms for an
image group with its levels): ``write_node`` writes the ``zarr.json`` that zarr's own
metadata classes (``GroupMetadata``, ``ArrayV3Metadata``) produce.

So zarr-python still defines every document and every byte: array metadata comes from
``zarr.create_array`` (on a memory store, once per kind of array: see ``ArrayTemplates``),
chunk keys from that metadata, and every read, resize and partial write goes through zarr.
An array whose codecs are not the ones known here is written through zarr (``ChunkWriter``
is None for it). ``tests/store/test_chunk_writer.py`` checks that the files are those zarr
writes, byte for byte.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numcodecs  # type: ignore[import-untyped]
import numpy as np
import zarr
from zarr.buffer import default_buffer_prototype
from zarr.core.group import GroupMetadata

Encode = Callable[[Any], Any]  # chunk bytes (a uint8 array) -> a bytes-like to write
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BLOSC_TYPESIZE = tuple(int(p) for p in numcodecs.__version__.split(".")[:2]) >= (0, 16)


def _encoder(codecs: tuple[Any, ...], itemsize: int) -> Encode | None:
    """Bytes of a C-order little-endian chunk -> what the array's codecs make of them."""
    described = [codec.to_dict() for codec in codecs]
    if not described or described[0].get("name") != "bytes":
        return None
    if described[0].get("configuration", {}).get("endian", "little") != "little":
        return None
    if len(described) == 1:
        return _as_is  # no compression: the pixels' own bytes, not a copy
    if len(described) != 2:
        return None
    name, config = described[1].get("name"), dict(described[1].get("configuration", {}))
    if name == "blosc":
        settings: dict[str, Any] = {
            "cname": config["cname"],
            "clevel": config["clevel"],
            "shuffle": _SHUFFLE[config["shuffle"]],
            "blocksize": config.get("blocksize", 0),
        }
        if _BLOSC_TYPESIZE:
            settings["typesize"] = config.get("typesize", itemsize)
        codec = numcodecs.Blosc.from_config(settings)
    elif name == "zstd":
        codec = numcodecs.Zstd.from_config(
            {"level": config.get("level", 0), "checksum": config.get("checksum", False)}
        )
    else:
        return None

    def encode(data: Any) -> Any:
        return codec.encode(data)

    return encode


class ChunkWriter:
    """Writes whole chunks of one zarr array of a local store (see the module docs)."""

    def __init__(self, metadata: Any, folder: Path, encode: Encode) -> None:
        self._metadata = metadata
        self._folder = folder
        self._dtype = _numpy_dtype(metadata).newbyteorder("<")
        self._chunk = tuple(metadata.chunks)
        self._encode = encode

    @classmethod
    def of(cls, metadata: Any, folder: Path) -> ChunkWriter | None:
        """A writer for the array of ``metadata`` (zarr's ``ArrayV3Metadata``) stored in
        ``folder``, or None: not Zarr v3, sharded, or codecs not known here."""
        if getattr(metadata, "zarr_format", None) != 3:
            return None
        encode = _encoder(tuple(metadata.codecs), _numpy_dtype(metadata).itemsize)
        return None if encode is None else cls(metadata, folder, encode)

    def write(self, chunk_coords: tuple[int, ...], block: Any) -> None:
        """Write ``block`` (exactly one chunk's shape) as the chunk at ``chunk_coords``."""
        if tuple(block.shape) != self._chunk:
            raise ValueError(f"a block of shape {block.shape} for chunks of {self._chunk}")
        raw = np.ascontiguousarray(block, dtype=self._dtype).view(np.uint8).reshape(-1)
        path = self._folder / self._metadata.encode_chunk_key(chunk_coords)
        put_file(path, self._encode(raw))


def _numpy_dtype(metadata: Any) -> np.dtype[Any]:
    native: np.dtype[Any] = np.dtype(metadata.dtype.to_native_dtype())
    return native


def _as_is(data: Any) -> Any:
    return data


def put_file(path: Path, data: Any) -> None:
    """Write ``path`` whole: to a temporary name beside it, then renamed into place, so a
    reader (or a crash) never sees half a file."""
    partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        try:
            out = open(partial, "wb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:  # the first file of its folder (mkdir costs: only then)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = open(partial, "wb")  # noqa: SIM115
        with out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_node(folder: Path, metadata: Any) -> None:
    """Write the ``zarr.json`` of a group or array (zarr's metadata object) in ``folder``."""
    for name, buffer in metadata.to_buffer_dict(default_buffer_prototype()).items():
        put_file(folder / name, buffer.to_bytes())


def write_group(folder: Path, attributes: dict[str, Any] | None = None) -> None:
    """A Zarr v3 group with these attributes (replacing the group's attributes)."""
    write_node(folder, GroupMetadata(attributes=attributes or {}))


class ArrayTemplates:
    """Array metadata as ``zarr.create_array`` makes it, made once per (chunk shape, dtype)
    on a memory store and given each array's own shape."""

    def __init__(self, compressors: Any, dimension_names: tuple[str, ...]) -> None:
        self._compressors = compressors
        self._names = dimension_names
        self._made: dict[tuple[tuple[int, ...], str], Any] = {}

    def metadata(self, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: Any) -> Any:
        key = (tuple(chunks), np.dtype(dtype).str)
        template = self._made.get(key)
        if template is None:
            template = zarr.create_array(
                zarr.storage.MemoryStore(),
                shape=tuple(chunks),
                chunks=tuple(chunks),
                dtype=np.dtype(dtype),
                fill_value=0,
                compressors=self._compressors,
                dimension_names=self._names,
            ).metadata
            self._made[key] = template
        return template.update_shape(tuple(shape))
