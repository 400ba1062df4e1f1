"""Protocol v1: every message that crosses a platestream socket, as frozen dataclasses.

Each message is one JSON object (the first ZeroMQ frame) with ``type`` and ``v`` (the
protocol version) next to the fields below; a batch's inline pixels follow as raw frames.
Data port (PUB -> SUB): ``batch``, ``probe``. Control port (REQ -> ROUTER, one request, one
reply): ``ping``/``pong``, ``attach``/``attached``, ``detach``, ``sync``/``synced``,
``status``/``status_report``, ``clear``, ``shutdown``, ``snapshot``/``snapshot_reply``,
``layers``/``layers_report``, and the generic replies ``ok`` and ``error``.
``docs/protocol.md`` explains each one.
"""

# wire_field() returns a dataclasses.field(); RUF009 does not know that.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Final

from platestream.config import DeliveryMode
from platestream.layering import ImageItem, LayerKind

from ._display import display_schema
from ._wire_fields import MAX_DIMS, MAX_ITEMS, MAX_NAME, MAX_TEXT, wire_field

PROTOCOL_VERSION: Final = 1

PRODUCER_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
TOKEN = r"^[A-Za-z0-9_-]{1,64}$"
POOL_KEY = r"^[0-9a-f]{32}$"
# Pool ids are also segment names; macOS allows 31 characters for those.
POOL_ID = r"^psm_[A-Za-z0-9_]{1,27}$"
MAX_WAIT_S = 30.0


class WireDtype(str, Enum):
    """Pixel types on the wire; always little-endian, never object or structured."""

    BOOL = "bool"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    COMPLEX64 = "complex64"
    COMPLEX128 = "complex128"


class DropReason(str, Enum):
    """Why an image or a message was not delivered; each reason is counted where it happens."""

    # Counted by the receiver, per message.
    BAD_FRAME = "bad_frame"  # not a UTF-8 JSON object (random bytes, broken envelope)
    BAD_SCHEMA = "bad_schema"  # JSON, but not a valid message of its type
    BAD_VERSION = "bad_version"  # a protocol version this receiver does not speak
    OVERSIZED = "oversized"  # over the receiver's size cap
    TRUNCATED = "truncated"  # frames missing, extra, or of another size than announced
    UNEXPECTED = "unexpected"  # a valid message on the wrong port
    INTERNAL = "internal"  # the receiver failed on a valid message (a bug; it is logged)
    # Counted by the receiver, per image.
    UNKNOWN_SLOT = "unknown_slot"  # names a pool or slot the receiver does not have
    OVERWRITTEN = "overwritten"  # its slot was rewritten before or during the copy
    SUPERSEDED = "superseded"  # a newer image of the same plane replaced it (live)
    QUEUE_FULL = "queue_full"  # the display queue was full (live)
    LOST = "lost"  # a gap in a producer's sequence numbers (per batch)
    # Counted by the viewer's display, per image.
    REJECTED = "rejected"  # no layer can show it (kind, shape, dtype) or the planner refused it
    DISPLAY_FAILED = "display_failed"  # writing it into its layer failed (logged; layer reset)
    CLEARED = "cleared"  # a clear request came before it was shown
    # An image of the same plane came later in the same display frame: only the newest is
    # drawn (SUPERSEDED, above).
    # Counted by the producer, per image.
    NO_VIEWER = "no_viewer"  # no viewer has completed the handshake (live)
    POOL_FULL = "pool_full"  # no free shared-memory slot within the live wait
    WINDOW_FULL = "window_full"  # too many inline bytes unacknowledged (live)
    BUDGET = "budget"  # lossless: not delivered within lossless_budget_s
    VIEWER_LOST = "viewer_lost"  # sent, but the viewer restarted or vanished before confirming


class PoolKind(str, Enum):
    MEMFD = "memfd"  # Linux: anonymous memory file, opened by the viewer via /proc/<pid>/fd
    NAMED = "named"  # POSIX shm_open name, unlinked by the viewer as soon as it maps it


class ErrorCode(str, Enum):
    BAD_REQUEST = "bad_request"
    BAD_VERSION = "bad_version"
    UNSUPPORTED = "unsupported"
    REFUSED = "refused"
    WRONG_VIEWER = "wrong_viewer"
    INTERNAL = "internal"


_MESSAGES: dict[str, type[Message]] = {}


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every wire message; subclasses register under their ``TYPE``."""

    TYPE: ClassVar[str] = ""
    PORT: ClassVar[str] = ""  # "data", "request" (to the viewer) or "reply" (from it)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            if cls.TYPE in _MESSAGES:
                raise TypeError(f"wire message type {cls.TYPE!r} defined twice")
            _MESSAGES[cls.TYPE] = cls


def message_types() -> dict[str, type[Message]]:
    """Every registered message class by its ``type`` value, in definition order."""
    return dict(_MESSAGES)


# ---------------------------------------------------------------------------- pixels


@dataclass(frozen=True, kw_only=True)
class ShmPixels:
    """The pixels lie in a slot of the producer's shared-memory pool."""

    WHERE: ClassVar[str] = "shm"
    pool: str = wire_field("id of the producer's pool (attached before)", pattern=POOL_ID)
    slot: int = wire_field("index of the slot in the pool's slot table", minimum=0)
    offset: int = wire_field("byte offset of the pixels in the pool", minimum=0)
    nbytes: int = wire_field("number of pixel bytes", minimum=0)
    generation: int = wire_field(
        "the slot's generation when written (even); another value at copy time means the "
        "slot was rewritten, and the image is dropped",
        minimum=2,
    )


@dataclass(frozen=True, kw_only=True)
class InlinePixels:
    """The pixels are a raw frame of this message (C order, little-endian)."""

    WHERE: ClassVar[str] = "inline"
    frame: int = wire_field(
        "index of the frame holding the pixels (1 = first after the header)",
        minimum=1,
        maximum=MAX_ITEMS,
    )
    nbytes: int = wire_field("size of that frame in bytes", minimum=0)


Pixels = ShmPixels | InlinePixels


@dataclass(frozen=True, kw_only=True)
class WireItem:
    """One image of a batch: the ImageItem fields plus where its pixels are."""

    components: Mapping[str, int | str] = wire_field(
        'component values by registry name, e.g. {"well": "A01", "channel": "DAPI"}',
        max_length=64,
    )
    step_index: int = wire_field("index of the step that produced the image", minimum=0)
    step_name: str = wire_field("name of that step", max_length=MAX_NAME)
    shape: tuple[int, ...] = wire_field("the array's shape", max_length=MAX_DIMS, items_minimum=0)
    dtype: WireDtype = wire_field("the array's element type (little-endian)")
    kind: LayerKind = wire_field("what layer type shows it", default=LayerKind.IMAGE)
    extra: Mapping[str, Any] = wire_field(
        "free JSON metadata, e.g. the source path", default_factory=dict, max_length=64
    )
    pixels: Pixels = wire_field("where the pixels are: a shared-memory slot or an inline frame")

    def image_item(self) -> ImageItem:
        return ImageItem(
            components=self.components,
            step_index=self.step_index,
            step_name=self.step_name,
            shape=self.shape,
            dtype=self.dtype.value,
            kind=self.kind,
            extra=self.extra,
        )


# ------------------------------------------------------------------------ data port


@dataclass(frozen=True, kw_only=True)
class Batch(Message):
    """Images from one producer, with the display config they are shown with."""

    TYPE: ClassVar[str] = "batch"
    PORT: ClassVar[str] = "data"
    producer: str = wire_field(
        "the producer's id, unique per process and viewer link", pattern=PRODUCER_ID
    )
    seq: int = wire_field("the producer's batch number on this link, from 1, no gaps", minimum=1)
    saved_at: float = wire_field("producer clock (epoch s) when save_batch was called")
    sent_at: float = wire_field("producer clock (epoch s) when the batch was sent")
    delivery: DeliveryMode = wire_field("live or lossless, as the producer was configured")
    display: Mapping[str, Any] = wire_field(
        "the producer's resolved NapariStreamingConfig", schema=display_schema()
    )
    items: tuple[WireItem, ...] = wire_field("the images", max_length=MAX_ITEMS)
    layout: Mapping[str, tuple[int | str, ...]] = wire_field(
        "the component values the producer expects in this run (its plate's declared "
        'layout), e.g. {"well": ["A01", "A02"], "site": [1, 2]}: the viewer makes layers at '
        "their final size. Sent with each batch until the viewer acknowledged one carrying it",
        default_factory=dict,
        max_length=64,
    )


@dataclass(frozen=True, kw_only=True)
class Probe(Message):
    """Handshake token sent on the data port; proves the producer's data path is live."""

    TYPE: ClassVar[str] = "probe"
    PORT: ClassVar[str] = "data"
    producer: str = wire_field("the producer's id", pattern=PRODUCER_ID)
    token: str = wire_field("the token of the producer's pending ping", pattern=TOKEN)


# ---------------------------------------------------------------- control requests


@dataclass(frozen=True, kw_only=True)
class Ping(Message):
    """Is a viewer there? With a token: is my data path to it live?"""

    TYPE: ClassVar[str] = "ping"
    PORT: ClassVar[str] = "request"
    producer: str = wire_field("the asking producer's id ('' for tools)", default="", max_length=64)
    token: str = wire_field(
        "if set, the pong waits until a probe with this token arrived on the data port",
        default="",
        max_length=64,
    )
    wait_s: float = wire_field(
        "how long the viewer may hold the pong for the probe",
        default=0.0,
        minimum=0.0,
        maximum=MAX_WAIT_S,
    )


@dataclass(frozen=True, kw_only=True)
class PoolInfo:
    """A producer's shared-memory pool, as the viewer needs it to map it."""

    id: str = wire_field("the pool id; for a named pool also its shm name", pattern=POOL_ID)
    kind: PoolKind = wire_field("how the viewer opens it")
    size: int = wire_field("the pool's size in bytes", minimum=4096)
    slots: int = wire_field(
        "entries in the slot table at the start of the pool", minimum=1, maximum=65536
    )
    fd: int = wire_field(
        "memfd only: its descriptor number in the producer process", default=-1, minimum=-1
    )


@dataclass(frozen=True, kw_only=True)
class Attach(Message):
    """Map my pool; on success I unlink its name (if any) and reference its slots."""

    TYPE: ClassVar[str] = "attach"
    PORT: ClassVar[str] = "request"
    producer: str = wire_field("the producer's id", pattern=PRODUCER_ID)
    pid: int = wire_field("the producer's process id", minimum=1)
    pool: PoolInfo = wire_field("the pool to map")
    key: str = wire_field(
        "a secret the producer chose (32 hex digits); only a detach repeating it, or an "
        "attach replacing the pool with it, is obeyed",
        pattern=POOL_KEY,
    )


@dataclass(frozen=True, kw_only=True)
class Detach(Message):
    """I am closing: forget my pool and state."""

    TYPE: ClassVar[str] = "detach"
    PORT: ClassVar[str] = "request"
    producer: str = wire_field("the producer's id", pattern=PRODUCER_ID)
    key: str = wire_field("the key its attach gave", pattern=POOL_KEY)


@dataclass(frozen=True, kw_only=True)
class Sync(Message):
    """Acknowledgement long-poll: reply once you are done with a batch after ``after``."""

    TYPE: ClassVar[str] = "sync"
    PORT: ClassVar[str] = "request"
    producer: str = wire_field("the producer's id", pattern=PRODUCER_ID)
    after: int = wire_field("the highest batch number the producer knows is done", minimum=0)
    wait_s: float = wire_field(
        "how long the viewer may hold the reply", default=0.5, minimum=0.0, maximum=MAX_WAIT_S
    )


@dataclass(frozen=True, kw_only=True)
class WaitShown(Message):
    """Reply once this many images in all are accounted for - shown, or dropped and
    counted - or when ``wait_s`` ran out: the end of a run waits for its own share."""

    TYPE: ClassVar[str] = "wait_shown"
    PORT: ClassVar[str] = "request"
    count: int = wire_field("images shown plus images dropped, in all, to wait for", minimum=0)
    wait_s: float = wire_field(
        "how long the viewer may hold the reply", default=5.0, minimum=0.0, maximum=MAX_WAIT_S
    )


@dataclass(frozen=True, kw_only=True)
class StatusRequest(Message):
    """Full counters of the viewer."""

    TYPE: ClassVar[str] = "status"
    PORT: ClassVar[str] = "request"


@dataclass(frozen=True, kw_only=True)
class Clear(Message):
    """Remove everything shown and queued."""

    TYPE: ClassVar[str] = "clear"
    PORT: ClassVar[str] = "request"


@dataclass(frozen=True, kw_only=True)
class Shutdown(Message):
    """Stop the viewer - the one whose id this is (a tool learns it from the pong)."""

    TYPE: ClassVar[str] = "shutdown"
    PORT: ClassVar[str] = "request"
    viewer_id: str = wire_field(
        "the viewer's id, from its pong: any other viewer refuses (wrong_viewer)",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
    )


@dataclass(frozen=True, kw_only=True)
class WellsFailed(Message):
    """Wells whose step failed in the pipeline: the plate overview marks them."""

    TYPE: ClassVar[str] = "wells_failed"
    PORT: ClassVar[str] = "request"
    step_name: str = wire_field(
        "the step that failed (empty: every step, e.g. its worker process died)",
        max_length=MAX_NAME,
    )
    wells: tuple[str, ...] = wire_field("the wells, as the plate names them", max_length=4096)
    reason: str = wire_field("what went wrong, for the viewer's log", max_length=MAX_TEXT)


@dataclass(frozen=True, kw_only=True)
class Snapshot(Message):
    """A PNG of the viewer's canvas."""

    TYPE: ClassVar[str] = "snapshot"
    PORT: ClassVar[str] = "request"
    canvas_only: bool = wire_field("the canvas alone, or the whole window", default=True)


@dataclass(frozen=True, kw_only=True)
class LayersRequest(Message):
    """The layers a viewer shows: names, shapes, axis labels, user-visible settings."""

    TYPE: ClassVar[str] = "layers"
    PORT: ClassVar[str] = "request"
