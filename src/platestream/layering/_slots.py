"""The live item of every plane of a layer group, as a persistent, chunked table.

Planes are keyed by ``(kind, coords)``. The table cuts each key at its last present value:
``(kind, ("A01", 3, None, None))`` lives in chunk ``(kind, ("A01",))`` under ``3``. A chunk
is a small dict that is never changed once built, so an update copies one chunk (at most the
length of one axis) and one path of the chunk map. A whole plate builds about one chunk per
well instead of one trie leaf per image, and the inner keys are plain values, which keeps
bulk planning fast and light on the garbage collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ._items import LayerKind
from ._pmap import PMap
from ._values import AxisValue

Coords = tuple[AxisValue, ...]  # one value per stacked component of the settings
SlotKey = tuple[LayerKind, Coords]
# The live item of one plane: (run, shape, dtype). A tuple because it is also the rank:
# the item with the larger tuple holds the plane (newest run; then a deterministic tie-break).
Slot = tuple[int, tuple[int, ...], str]
ChunkKey = tuple[LayerKind, Coords]  # the coords before the last present value


def split_key(kind: LayerKind, coords: Coords) -> tuple[ChunkKey, AxisValue]:
    """(chunk, key in the chunk). The prefix length tells where the value was."""
    if not coords:
        return (kind, coords), None
    last = len(coords) - 1
    while last > 0 and coords[last] is None:
        last -= 1
    return (kind, coords[:last]), coords[last]


def join_key(chunk: ChunkKey, inner: AxisValue, width: int) -> SlotKey:
    kind, prefix = chunk
    if not width:
        return kind, ()
    return kind, (*prefix, inner, *((None,) * (width - len(prefix) - 1)))


Chunks = PMap[ChunkKey, Mapping[AxisValue, Slot]]


class SlotTable:
    """An immutable map from plane key to its live Slot."""

    __slots__ = ("_chunks", "_size", "_width")

    def __init__(self, width: int, chunks: Chunks | None = None, size: int = 0) -> None:
        self._width = width  # the number of stacked components: the length of every coords
        self._chunks: Chunks = chunks if chunks is not None else PMap()
        self._size = size

    def chunk(self, key: ChunkKey) -> Mapping[AxisValue, Slot] | None:
        chunk: Mapping[AxisValue, Slot] | None = self._chunks.get(key)
        return chunk

    def get(self, kind: LayerKind, coords: Coords) -> Slot | None:
        outer, inner = split_key(kind, coords)
        chunk = self._chunks.get(outer)
        return None if chunk is None else chunk.get(inner)

    def __len__(self) -> int:
        return self._size

    def items(self) -> Iterator[tuple[SlotKey, Slot]]:
        for outer, chunk in self._chunks.items():
            for inner, slot in chunk.items():
                yield join_key(outer, inner, self._width), slot

    def updated(self, touched: Mapping[ChunkKey, dict[AxisValue, Slot]], grown: int) -> SlotTable:
        """The table with whole chunks replaced (each a fresh dict no one changes later);
        ``grown`` is how many planes the new chunks hold beyond the ones they replace."""
        if not touched:
            return self
        return SlotTable(self._width, self._chunks.update(touched), self._size + grown)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlotTable):
            return NotImplemented
        return self._size == other._size and dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"SlotTable({dict(self.items())!r})"


class SlotWork:
    """Changes to a SlotTable during one planning call, made chunk by chunk."""

    __slots__ = ("base", "old_sizes", "touched")

    def __init__(self, base: SlotTable) -> None:
        self.base = base
        self.touched: dict[ChunkKey, dict[AxisValue, Slot]] = {}
        self.old_sizes = 0  # planes the touched chunks held when copied

    def chunk(self, outer: ChunkKey) -> dict[AxisValue, Slot]:
        """The writable copy of a chunk (copied from the table on first use)."""
        chunk = self.touched.get(outer)
        if chunk is None:
            old = self.base.chunk(outer) if len(self.base) else None
            chunk = self.touched[outer] = dict(old) if old is not None else {}
            self.old_sizes += len(chunk)
        return chunk

    def get(self, kind: LayerKind, coords: Coords) -> Slot | None:
        outer, inner = split_key(kind, coords)
        return self.chunk(outer).get(inner)

    def clear(self) -> None:
        self.base, self.touched, self.old_sizes = SlotTable(self.base._width), {}, 0

    def items(self) -> Iterator[tuple[SlotKey, Slot]]:
        width = self.base._width
        for key, slot in self.base.items():
            if split_key(*key)[0] not in self.touched:
                yield key, slot
        for outer, chunk in self.touched.items():
            for inner, slot in chunk.items():
                yield join_key(outer, inner, width), slot

    def freeze(self) -> SlotTable:
        grown = sum(len(chunk) for chunk in self.touched.values()) - self.old_sizes
        return self.base.updated(self.touched, grown)
