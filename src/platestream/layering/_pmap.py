"""A persistent (immutable) hash map: ``set`` returns a new map and shares the rest.

The planner's state is a frozen value, yet streaming one more image must cost far less than
copying a plate's worth of bookkeeping. A hash array mapped trie gives both: an update copies
only the path from the root to one leaf (a few tuples of at most 32 entries), so the old map
stays valid and unchanged. ``update`` with many pairs rebuilds the trie in one pass when the
batch is large compared with the map, which keeps planning a whole plate linear.

Iteration order follows Python's (salted) hashes, so callers that emit anything in iteration
order must sort first; every such place in the planner does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

K = TypeVar("K")
V = TypeVar("V")

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1
_HASH_BITS = 64
_HASH_MASK = (1 << _HASH_BITS) - 1

# A leaf is a plain tuple (hash, key, value); inner nodes are the two classes below.
Leaf = tuple[int, Any, Any]


class _Bitmap:
    """An inner node: ``bitmap`` says which of the 32 slots are used; ``slots`` holds them."""

    __slots__ = ("bitmap", "slots")

    def __init__(self, bitmap: int, slots: tuple[Any, ...]) -> None:
        self.bitmap = bitmap
        self.slots = slots


class _Collision:
    """Keys whose full 64-bit hashes are equal, kept as a small list of leaves."""

    __slots__ = ("hash", "leaves")

    def __init__(self, hash_: int, leaves: tuple[Leaf, ...]) -> None:
        self.hash = hash_
        self.leaves = leaves


_EMPTY_ROOT = _Bitmap(0, ())


def _hash(key: object) -> int:
    return hash(key) & _HASH_MASK


def _position(bitmap: int, bit: int) -> int:
    return (bitmap & (bit - 1)).bit_count()


def _pair(shift: int, a: Any, a_hash: int, b: Leaf) -> Any:
    """A node holding ``a`` (a leaf or a collision) and the leaf ``b``, whose hashes differ."""
    if shift >= _HASH_BITS:
        raise AssertionError("distinct hashes cannot collide in every bit")
    ia, ib = (a_hash >> shift) & _MASK, (b[0] >> shift) & _MASK
    if ia == ib:
        return _Bitmap(1 << ia, (_pair(shift + _BITS, a, a_hash, b),))
    slots = (a, b) if ia < ib else (b, a)
    return _Bitmap((1 << ia) | (1 << ib), slots)


def _set_collision(node: _Collision, leaf: Leaf) -> tuple[Any, bool]:
    for i, (_h, key, value) in enumerate(node.leaves):
        if key is leaf[1] or key == leaf[1]:
            if value is leaf[2]:
                return node, False
            leaves = (*node.leaves[:i], leaf, *node.leaves[i + 1 :])
            return _Collision(node.hash, leaves), False
    return _Collision(node.hash, (*node.leaves, leaf)), True


def _set(node: Any, shift: int, leaf: Leaf) -> tuple[Any, bool]:
    """(new node, whether the map grew). Returns ``node`` itself when nothing changes."""
    if type(node) is _Collision:
        if node.hash == leaf[0]:
            return _set_collision(node, leaf)
        return _pair(shift, node, node.hash, leaf), True
    bit = 1 << ((leaf[0] >> shift) & _MASK)
    pos = _position(node.bitmap, bit)
    if not node.bitmap & bit:
        slots = (*node.slots[:pos], leaf, *node.slots[pos:])
        return _Bitmap(node.bitmap | bit, slots), True
    current = node.slots[pos]
    new: Any
    if type(current) is tuple:
        if current[0] == leaf[0] and (current[1] is leaf[1] or current[1] == leaf[1]):
            if current[2] is leaf[2]:
                return node, False
            new, grew = leaf, False
        elif current[0] == leaf[0]:
            new, grew = _Collision(leaf[0], (current, leaf)), True
        else:
            new, grew = _pair(shift + _BITS, current, current[0], leaf), True
    else:
        new, grew = _set(current, shift + _BITS, leaf)
        if new is current:
            return node, False
    return _Bitmap(node.bitmap, (*node.slots[:pos], new, *node.slots[pos + 1 :])), grew


def _get(node: Any, hash_: int, key: object) -> Leaf | None:
    shift = 0
    while True:
        if type(node) is _Collision:
            for leaf in node.leaves:
                if leaf[1] is key or leaf[1] == key:
                    return leaf
            return None
        bit = 1 << ((hash_ >> shift) & _MASK)
        if not node.bitmap & bit:
            return None
        child = node.slots[_position(node.bitmap, bit)]
        if type(child) is tuple:
            return cast(Leaf, child) if child[0] == hash_ and child[1] == key else None
        node, shift = child, shift + _BITS


def _delete(node: Any, shift: int, hash_: int, key: object) -> Any:
    """The node without ``key``: the same node if absent, None if emptied, or a lone leaf."""
    if type(node) is _Collision:
        leaves = tuple(leaf for leaf in node.leaves if not (leaf[1] is key or leaf[1] == key))
        if len(leaves) == len(node.leaves):
            return node
        return leaves[0] if len(leaves) == 1 else _Collision(node.hash, leaves)
    bit = 1 << ((hash_ >> shift) & _MASK)
    if not node.bitmap & bit:
        return node
    pos = _position(node.bitmap, bit)
    child = node.slots[pos]
    if type(child) is tuple:
        if not (child[0] == hash_ and child[1] == key):
            return node
        new = None
    else:
        new = _delete(child, shift + _BITS, hash_, key)
        if new is child:
            return node
    if new is None:
        slots = (*node.slots[:pos], *node.slots[pos + 1 :])
        if not slots:
            return None
        # A lone leaf moves up so lookups stay short; the root never collapses (see PMap).
        if len(slots) == 1 and type(slots[0]) is tuple:
            return slots[0]
        return _Bitmap(node.bitmap & ~bit, slots)
    if len(node.slots) == 1 and type(new) is tuple:
        return new
    return _Bitmap(node.bitmap, (*node.slots[:pos], new, *node.slots[pos + 1 :]))


def _build(leaves: list[Leaf], shift: int) -> Any:
    """A trie holding ``leaves`` (distinct keys), built bottom-up in one pass."""
    if len(leaves) == 1:
        return leaves[0]
    if shift >= _HASH_BITS:
        return _Collision(leaves[0][0], tuple(leaves))
    buckets: dict[int, list[Leaf]] = {}
    for leaf in leaves:
        index = (leaf[0] >> shift) & _MASK
        bucket = buckets.get(index)
        if bucket is None:
            buckets[index] = [leaf]
        else:
            bucket.append(leaf)
    bitmap = 0
    slots = []
    for index in sorted(buckets):
        bitmap |= 1 << index
        slots.append(_build(buckets[index], shift + _BITS))
    return _Bitmap(bitmap, tuple(slots))


def _leaves(node: Any) -> Iterator[Leaf]:
    if type(node) is tuple:
        yield cast(Leaf, node)
    elif type(node) is _Collision:
        yield from node.leaves
    else:
        for child in node.slots:
            yield from _leaves(child)


def _as_root(node: Any) -> _Bitmap:
    """The root is always a bitmap node, so a lone leaf or collision is wrapped."""
    if node is None:
        return _EMPTY_ROOT
    if type(node) is _Bitmap:
        return node
    hash_ = node[0] if type(node) is tuple else node.hash
    return _Bitmap(1 << (hash_ & _MASK), (node,))


class PMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping with cheap functional updates. Compares equal by content."""

    __slots__ = ("_root", "_size")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        merged = {key: value for key, value in pairs}
        leaves = [(_hash(key), key, value) for key, value in merged.items()]
        self._root: _Bitmap = _as_root(_build(leaves, 0)) if leaves else _EMPTY_ROOT
        self._size = len(leaves)

    @classmethod
    def _of(cls, root: _Bitmap, size: int) -> PMap[K, V]:
        new = cls.__new__(cls)
        new._root, new._size = root, size
        return new

    def __getitem__(self, key: K) -> V:
        leaf = _get(self._root, _hash(key), key)
        if leaf is None:
            raise KeyError(key)
        return cast(V, leaf[2])

    def get(self, key: K, default: Any = None) -> Any:
        leaf = _get(self._root, _hash(key), key)
        return default if leaf is None else leaf[2]

    def __contains__(self, key: object) -> bool:
        return _get(self._root, _hash(key), key) is not None

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[K]:
        return (leaf[1] for leaf in _leaves(self._root))

    def items(self) -> Iterator[tuple[K, V]]:  # type: ignore[override]
        return ((leaf[1], leaf[2]) for leaf in _leaves(self._root))

    def values(self) -> Iterator[V]:  # type: ignore[override]
        return (leaf[2] for leaf in _leaves(self._root))

    def set(self, key: K, value: V) -> PMap[K, V]:
        root, grew = _set(self._root, 0, (_hash(key), key, value))
        if root is self._root:
            return self
        return PMap._of(root, self._size + grew)

    def delete(self, key: K) -> PMap[K, V]:
        """The map without ``key`` (the same map if ``key`` is absent)."""
        root = _delete(self._root, 0, _hash(key), key)
        if root is self._root:
            return self
        return PMap._of(_as_root(root), self._size - 1)

    def update(self, pairs: Mapping[K, V]) -> PMap[K, V]:
        """The map with every pair of ``pairs`` set: one rebuild when the batch is large."""
        if not pairs:
            return self
        if len(pairs) <= 8 or len(pairs) * 4 < self._size:
            result = self
            for key, value in pairs.items():
                result = result.set(key, value)
            return result
        merged = dict(self.items())
        merged.update(pairs)
        return PMap(merged)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        missing = object()
        return all(other.get(key, missing) == value for key, value in self.items())

    def __hash__(self) -> int:
        return hash(frozenset((hash(k), hash(v)) for k, v in self.items()))

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"
