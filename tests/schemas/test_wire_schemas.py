"""Protocol v1 messages: committed schemas, strict validation, round trips, documentation."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platestream.config import DeliveryMode, default_display
from platestream.layering import LayerKind
from platestream.schemas import (
    PROTOCOL_VERSION,
    Attach,
    Attached,
    Batch,
    Clear,
    Detach,
    DisplayState,
    DropReason,
    Error,
    ErrorCode,
    InlinePixels,
    LayerInfo,
    LayersReport,
    LayersRequest,
    Ok,
    Ping,
    Pong,
    PoolInfo,
    PoolKind,
    Probe,
    ProducerReport,
    ShmPixels,
    Shown,
    Shutdown,
    Snapshot,
    SnapshotReply,
    StatusReport,
    StatusRequest,
    Sync,
    Synced,
    ViewerState,
    WaitShown,
    WellsFailed,
    WireDtype,
    WireError,
    WireItem,
    decode_message,
    display_from_wire,
    display_to_wire,
    encode_message,
    message_types,
)
from platestream.schemas.jsonschema_gen import SCHEMA_DIR, all_schemas, render

ROOT = Path(__file__).parents[2]
STATE = ViewerState(
    ready=True, producers=1, received=2, dropped=0, queue_depth=0, queue_bytes=0, memory_bytes=1
)


def item(pixels: Any, **fields: Any) -> WireItem:
    values: dict[str, Any] = {
        "components": {"well": "A01", "channel": "DAPI", "site": 1},
        "step_index": 2,
        "step_name": "blur",
        "shape": (4, 3),
        "dtype": WireDtype.UINT16,
        "pixels": pixels,
    }
    return WireItem(**{**values, **fields})


def batch(**fields: Any) -> Batch:
    values: dict[str, Any] = {
        "producer": "p1-abc",
        "seq": 1,
        "saved_at": 1.5,
        "sent_at": 2.5,
        "delivery": DeliveryMode.LIVE,
        "display": display_to_wire(default_display()),
        "items": (
            item(ShmPixels(pool="psm_0a1b2c", slot=0, offset=8192, nbytes=24, generation=2)),
            item(InlinePixels(frame=1, nbytes=24), kind=LayerKind.LABELS, extra={"path": "a.tif"}),
        ),
    }
    return Batch(**{**values, **fields})


SAMPLES = [
    batch(),
    Probe(producer="p1-abc", token="tok"),
    Ping(),
    Ping(producer="p1-abc", token="t0k", wait_s=2.0),
    Attach(
        producer="p1",
        pid=42,
        pool=PoolInfo(id="psm_x", kind=PoolKind.MEMFD, size=8192, slots=4, fd=7),
        key="0123456789abcdef0123456789abcdef",
    ),
    Detach(producer="p1", key="0123456789abcdef0123456789abcdef"),
    Sync(producer="p1", after=3),
    WaitShown(count=12, wait_s=5.0),
    StatusRequest(),
    Clear(),
    Shutdown(viewer_id="abc"),
    Snapshot(),
    WellsFailed(step_name="blur", wells=("A02", "B03"), reason="ValueError: empty"),
    Pong(
        protocol=1,
        viewer_id="v",
        pid=1,
        host="h",
        data_port=5555,
        control_port=6555,
        started_at=1.0,
        probe_seen=True,
        state=STATE,
    ),
    Attached(pool="psm_x"),
    Synced(viewer_id="v", done_seq=3, dropped={"lost": 1}, window=16 << 20),
    Shown(displayed=10, dropped=2, queued=0),
    StatusReport(
        viewer_id="v",
        state=STATE,
        batches=1,
        images=2,
        bytes=3,
        dropped={},
        auth_denied=0,
        pools=1,
        producers={
            "p1": ProducerReport(
                pid=1, pool="", batches=1, images=2, bytes=3, last_seq=1, done_seq=1, dropped={}
            )
        },
    ),
    SnapshotReply(nbytes=10),
    LayersRequest(),
    LayersReport(
        layers=(
            LayerInfo(
                name="Plate",
                kind="image",
                shape=(2, 4, 4),
                dtype="uint16",
                axis_labels=("Well", "Y", "X"),
                visible=True,
                colormap="gray",
                contrast_limits=(0.0, 1.0),
                streamed=True,
            ),
        ),
        axis_labels=("Well", "Y", "X"),
        current_step=(0, 0, 0),
        caption="Well A01",
    ),
    Ok(),
    Error(code=ErrorCode.REFUSED, message="no"),
]


def validator(message_type: str) -> jsonschema.Draft202012Validator:
    name = f"wire-{message_type.replace('_', '-')}.schema.json"
    schema = json.loads((SCHEMA_DIR / name).read_text())
    return jsonschema.Draft202012Validator(schema)


def test_committed_schemas_match_a_fresh_generation() -> None:
    fresh = all_schemas()
    committed = {p.name for p in SCHEMA_DIR.glob("wire-*.schema.json")}
    assert committed == set(fresh), "run python -m platestream.schemas.jsonschema_gen"
    for name, schema in fresh.items():
        assert (SCHEMA_DIR / name).read_text() == render(schema), (
            f"{name} is stale: run python -m platestream.schemas.jsonschema_gen"
        )


def test_every_message_type_has_a_sample_and_a_valid_schema() -> None:
    assert {m.TYPE for m in SAMPLES} == set(message_types())
    for schema in all_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.TYPE)
def test_round_trip_and_schema_agree(message: Any) -> None:
    data = encode_message(message)
    assert decode_message(data) == message
    body = json.loads(data)
    assert body["type"] == message.TYPE and body["v"] == PROTOCOL_VERSION
    validator(message.TYPE).validate(body)


def _mutations() -> list[tuple[str, Any]]:
    good = json.loads(encode_message(batch()))
    cases: list[tuple[str, Any]] = []

    def mutate(name: str, path: list[Any], value: Any) -> None:
        body = json.loads(json.dumps(good))
        target = body
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        cases.append((name, body))

    mutate("string seq", ["seq"], "1")
    mutate("bool seq", ["seq"], True)
    mutate("zero seq", ["seq"], 0)
    mutate("unknown field", ["extra_field"], 1)
    mutate("missing items", ["items"], KeyError)
    mutate("bad delivery", ["delivery"], "fast")
    mutate("bad producer", ["producer"], "has space")
    mutate("bad dtype", ["items", 0, "dtype"], "object")
    mutate("negative slot", ["items", 0, "pixels", "slot"], -1)
    mutate("bad where", ["items", 0, "pixels", "where"], "disk")
    mutate("bad pool id", ["items", 0, "pixels", "pool"], "/etc/passwd")
    mutate("frame 0", ["items", 1, "pixels", "frame"], 0)
    mutate("too many dims", ["items", 0, "shape"], [1] * 33)
    mutate("negative shape entry", ["items", 0, "shape", 0], -1)
    mutate("4,000-digit seq", ["seq"], 10**4000)
    mutate("seq past int64", ["seq"], 2**63)
    mutate("huge component", ["items", 0, "components", "site"], -(2**70))
    mutate("float component", ["items", 0, "components", "site"], 1.5)
    mutate("display not object", ["display"], [])
    mutate("display unknown key", ["display", "nope"], 1)
    mutate("display missing key", ["display", "colormap"], KeyError)
    mutate("display bad enum", ["display", "channel_mode"], "sideways")
    return cases


@pytest.mark.parametrize(("name", "body"), _mutations(), ids=[n for n, _ in _mutations()])
def test_validator_and_schema_reject_the_same_junk(name: str, body: Any) -> None:
    assert list(validator("batch").iter_errors(body)), f"schema accepted: {name}"
    data = json.dumps(body).encode()
    try:
        message = decode_message(data)
    except WireError as err:
        assert err.reason is DropReason.BAD_SCHEMA
        return
    # The display config is checked by the config classes, one step after the structure.
    assert name.startswith("display")
    with pytest.raises(ValueError):
        display_from_wire(message.display)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\xff random bytes", DropReason.BAD_FRAME),
        (b"[1, 2]", DropReason.BAD_FRAME),
        (b'{"type": "ping", "v": 1, "v": 1}', DropReason.BAD_FRAME),
        (b'{"type": "sync", "v": 1, "producer": "p", "after": NaN}', DropReason.BAD_FRAME),
        (b"[" * 100000, DropReason.BAD_FRAME),
        (b'{"type": "ping"}', DropReason.BAD_SCHEMA),
        (b'{"type": "ping", "v": "1"}', DropReason.BAD_SCHEMA),
        (b'{"type": "ping", "v": 2}', DropReason.BAD_VERSION),
        (b'{"type": "nope", "v": 2}', DropReason.BAD_VERSION),
        (b'{"type": "nope", "v": 1}', DropReason.BAD_SCHEMA),
        (b'{"type": "ping", "v": 1, "wait_s": 1e9}', DropReason.BAD_SCHEMA),
    ],
)
def test_undecodable_headers_say_why(data: bytes, reason: DropReason) -> None:
    with pytest.raises(WireError) as caught:
        decode_message(data)
    assert caught.value.reason is reason


def test_a_message_on_the_wrong_port_is_unexpected() -> None:
    with pytest.raises(WireError) as caught:
        decode_message(encode_message(Ping()), port="data")
    assert caught.value.reason is DropReason.UNEXPECTED


def test_display_config_round_trips_through_the_wire() -> None:
    config = default_display()
    assert display_from_wire(display_to_wire(config)) == config
    with pytest.raises(ValueError):
        display_to_wire(type(config)())  # unresolved


components = st.dictionaries(
    st.sampled_from(["well", "channel", "site", "z_index", "timepoint"]),
    st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=20)),
    max_size=5,
)
pixels = st.one_of(
    st.builds(
        ShmPixels,
        pool=st.from_regex(r"psm_[a-z0-9]{1,20}", fullmatch=True),
        slot=st.integers(0, 1 << 20),
        offset=st.integers(0, 1 << 40),
        nbytes=st.integers(0, 1 << 40),
        generation=st.integers(2, 1 << 62),
    ),
    st.builds(InlinePixels, frame=st.integers(1, 4096), nbytes=st.integers(0, 1 << 40)),
)
items = st.builds(
    WireItem,
    components=components,
    step_index=st.integers(0, 1000),
    step_name=st.text(max_size=30),
    shape=st.lists(st.integers(0, 1 << 20), max_size=6).map(tuple),
    dtype=st.sampled_from(list(WireDtype)),
    kind=st.sampled_from(list(LayerKind)),
    extra=st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5)),
        max_size=3,
    ),
    pixels=pixels,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(items, max_size=5), st.integers(1, 1 << 50), st.floats(0, 2e9))
def test_any_valid_batch_round_trips_and_matches_its_schema(
    wire_items: list[WireItem], seq: int, when: float
) -> None:
    message = batch(items=tuple(wire_items), seq=seq, saved_at=when, sent_at=when)
    data = encode_message(message)
    assert decode_message(data) == message
    validator("batch").validate(json.loads(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_anything_but_a_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_message(data)


def test_protocol_doc_describes_every_message_and_field() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    import dataclasses

    missing = []
    for message_type, cls in message_types().items():
        if f"`{message_type}`" not in text:
            missing.append(message_type)
        for field in dataclasses.fields(cls):
            if not re.search(rf"`{field.name}`", text):
                missing.append(f"{message_type}.{field.name}")
    for nested in (
        WireItem,
        ShmPixels,
        InlinePixels,
        PoolInfo,
        ViewerState,
        DisplayState,
        ProducerReport,
    ):
        missing += [
            f"{nested.__name__}.{f.name}"
            for f in dataclasses.fields(nested)
            if f"`{f.name}`" not in text
        ]
    missing += [f"reason {r.value}" for r in DropReason if f"`{r.value}`" not in text]
    assert not missing, f"docs/protocol.md does not describe: {missing}"


def _text_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a JSON value holds text: ("key",) for a value, ("key", KEY) for a dict key."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, str) and path != ("type",):
        found.append(path)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if path:  # the message's own field names are not free text
                found.append((*path, KEY, key))
            found.extend(_text_paths(inner, (*path, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(_text_paths(inner, (*path, index)))
    return found


KEY = object()  # marks a dict key in a text path
_ANY_CHAR = st.text(st.characters(exclude_categories=()), max_size=8)
ANY_TEXT = st.one_of(
    _ANY_CHAR,
    # lone surrogates (invalid) and a surrogate pair (valid: JSON joins it), spliced in
    st.builds(
        lambda a, s, b: a + s + b,
        _ANY_CHAR,
        st.sampled_from(["\ud800", "\udfff", "\udbff\udc00"]),
        _ANY_CHAR,
    ),
)


def _with_text(body: Any, path: tuple[Any, ...], text: str) -> Any:
    target = body
    if len(path) >= 2 and path[-2] is KEY:
        for step in path[:-2]:
            target = target[step]
        target[text] = target.pop(path[-1])
        return body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    return body


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_any_text_in_any_message_is_refused_or_round_trips(message: Any, data: Any) -> None:
    """Every text field and key of every message, fuzzed (lone surrogates included): the
    decoder refuses it with a WireError, or the message it returns encodes again."""
    body = json.loads(encode_message(message))
    paths = _text_paths(body)
    if not paths:
        return
    path = data.draw(st.sampled_from(paths))
    fuzzed = _with_text(body, path, data.draw(ANY_TEXT))
    raw = json.dumps(fuzzed, ensure_ascii=True).encode()
    try:
        decoded = decode_message(raw)
    except WireError:
        return
    assert decode_message(encode_message(decoded)) == decoded
