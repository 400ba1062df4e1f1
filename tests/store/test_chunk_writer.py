"""The run store's whole-chunk writer writes the files zarr-python itself writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from platestream.store._files import ChunkWriter, write_group

CODECS: dict[str, Any] = {
    "lz4-bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    "zstd-shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
    "zstd": ZstdCodec(level=1),
    "none": None,
}
DTYPES = ["uint8", "uint16", "int32", "float32", "float64", "complex64", "bool"]


def _pair(root: Any, codec: Any, dtype: str) -> tuple[Any, Any]:
    made = []
    for name in ("by_zarr", "by_writer"):
        made.append(
            root.create_array(
                f"{dtype}/{name}",
                shape=(2, 3, 2, 40, 56),
                chunks=(1, 1, 1, 40, 56),
                dtype=dtype,
                fill_value=0,
                compressors=codec,
                config={"write_empty_chunks": True},
            )
        )
    return made[0], made[1]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_chunks_are_the_bytes_zarr_writes_and_zarr_reads_them(tmp_path: Path, codec: str) -> None:
    root = zarr.open_group(tmp_path / "run", mode="w-", zarr_format=3)
    rng = np.random.default_rng(7)
    for dtype in DTYPES:
        by_zarr, by_writer = _pair(root, CODECS[codec], dtype)
        writer = ChunkWriter.of(by_writer.metadata, tmp_path / "run" / dtype / "by_writer")
        assert writer is not None, f"{codec} {dtype}: a codec chain zarr made is not known"
        plane = (rng.normal(100, 30, (40, 56)) * 3).astype(dtype)
        by_zarr[1, 2, 1] = plane
        writer.write((1, 2, 1, 0, 0), plane[None, None, None])
        key = by_zarr.metadata.encode_chunk_key((1, 2, 1, 0, 0))
        written = (tmp_path / "run" / dtype / "by_writer" / key).read_bytes()
        assert written == (tmp_path / "run" / dtype / "by_zarr" / key).read_bytes(), dtype
        reread = zarr.open_array(tmp_path / "run" / dtype / "by_writer", mode="r")
        np.testing.assert_array_equal(reread[1, 2, 1], plane)
        assert not np.any(reread[0, 0, 0])  # only that chunk was written
        assert not list((tmp_path / "run" / dtype / "by_writer").rglob("*.partial"))


def test_an_array_with_codecs_it_does_not_know_is_left_to_zarr(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "run", mode="w-", zarr_format=3)
    big_endian = root.create_array(
        "be",
        shape=(4, 4),
        chunks=(4, 4),
        dtype="uint16",
        serializer=zarr.codecs.BytesCodec(endian="big"),
    )
    sharded = root.create_array("sh", shape=(8, 8), chunks=(4, 4), shards=(8, 8), dtype="uint16")
    assert ChunkWriter.of(big_endian.metadata, tmp_path / "run" / "be") is None
    assert ChunkWriter.of(sharded.metadata, tmp_path / "run" / "sh") is None


def test_a_block_that_is_not_one_chunk_is_refused(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "run", mode="w-", zarr_format=3)
    array = root.create_array("a", shape=(2, 8, 8), chunks=(1, 8, 8), dtype="uint16")
    writer = ChunkWriter.of(array.metadata, tmp_path / "run" / "a")
    assert writer is not None
    with pytest.raises(ValueError, match="block of shape"):
        writer.write((0, 0, 0), np.zeros((1, 4, 8), np.uint16))


def test_a_group_written_directly_is_the_group_zarr_writes(tmp_path: Path) -> None:
    attributes = {"ome": {"version": "0.5", "well": {"images": [{"path": "0"}]}}}
    zarr.open_group(tmp_path / "by_zarr", mode="w-", zarr_format=3).attrs.put(attributes)
    write_group(tmp_path / "by_writer", attributes)
    ours = (tmp_path / "by_writer" / "zarr.json").read_bytes()
    assert ours == (tmp_path / "by_zarr" / "zarr.json").read_bytes()
    assert dict(zarr.open_group(tmp_path / "by_writer", mode="r").attrs) == attributes
