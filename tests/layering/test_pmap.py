"""The persistent map behaves like a dict, and old versions never change."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from platestream.layering._pmap import PMap


class Clash:
    """A key whose hash the test chooses, to force full 64-bit hash collisions."""

    def __init__(self, name: str, hash_: int) -> None:
        self.name, self.hash_ = name, hash_

    def __hash__(self) -> int:
        return self.hash_

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Clash) and (other.name, other.hash_) == (self.name, self.hash_)

    def __repr__(self) -> str:
        return f"Clash({self.name!r}, {self.hash_})"


keys = st.one_of(
    st.integers(-5, 200),
    st.text(max_size=3),
    st.builds(Clash, st.sampled_from("abcdef"), st.sampled_from([0, 1, 2**40, -1, 32, 33])),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, st.integers()),
        st.tuples(st.just("delete"), keys, st.none()),
        st.tuples(st.just("update"), st.dictionaries(keys, st.integers(), max_size=40), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_pmap_matches_a_dict_and_keeps_old_versions(ops: list[tuple[str, object, object]]) -> None:
    current: PMap[object, object] = PMap()
    model: dict[object, object] = {}
    history = [(current, dict(model))]
    for op, key, value in ops:
        if op == "set":
            current, model[key] = current.set(key, value), value
        elif op == "delete":
            current = current.delete(key)
            model.pop(key, None)
        else:
            current = current.update(key)  # type: ignore[arg-type]
            model.update(key)  # type: ignore[call-overload]
        history.append((current, dict(model)))
    for version, expected in history:  # every old version still reads as it did
        assert len(version) == len(expected)
        assert dict(version.items()) == expected
        assert all(version[k] == v and k in version for k, v in expected.items())
        assert version == PMap(expected)


def test_missing_keys_and_identity_of_unchanged_maps() -> None:
    base = PMap({"a": 1, "b": 2})
    assert base.get("z") is None and "z" not in base
    assert base.set("a", base["a"]) is base  # setting the same object changes nothing
    assert base.delete("z") is base
    assert base.update({}) is base
    assert base != PMap({"a": 1}) and base == {"a": 1, "b": 2}


def test_collisions_survive_growth_and_deletion() -> None:
    clashing = [Clash(c, 7) for c in "abcd"]
    m: PMap[object, int] = PMap()
    for i, key in enumerate(clashing):
        m = m.set(key, i)
    m = m.set(Clash("x", 7 + 32), 99)  # same low bits, different hash: splits below the collision
    assert [m[k] for k in clashing] == [0, 1, 2, 3]
    for key in clashing[:3]:
        m = m.delete(key)
    assert dict(m.items()) == {clashing[3]: 3, Clash("x", 39): 99}
