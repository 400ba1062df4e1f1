"""Protocol v1 control replies: what the viewer answers on its control port."""

# wire_field() returns a dataclasses.field(); RUF009 does not know that.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ._wire import POOL_ID, ErrorCode, Message
from ._wire_fields import MAX_NAME, MAX_TEXT, wire_field

COUNTS = "counts by DropReason value"


@dataclass(frozen=True, kw_only=True)
class DisplayState:
    """The display side of a viewer (napari), as the viewer process reports it.

    A receiver without a display (``platestream.backend.bare_receiver``) reports the defaults.
    """

    title: str = wire_field("the viewer window's title", default="", max_length=MAX_NAME)
    layers: int = wire_field("napari layers shown", default=0, minimum=0)
    layers_pending: int = wire_field(
        "layers planned but not created yet (a few are created per display frame)",
        default=0,
        minimum=0,
    )
    shapes_pending: int = wire_field(
        "polygons stored but not given to napari yet (a few hundred are given per display frame)",
        default=0,
        minimum=0,
    )
    displayed: int = wire_field("images written into layers", default=0, minimum=0)
    receive_rate: float = wire_field(
        "images received per second, over the last few seconds", default=0.0, minimum=0.0
    )
    display_rate: float = wire_field(
        "images displayed per second, over the last few seconds", default=0.0, minimum=0.0
    )
    latency_p50_ms: float = wire_field(
        "median time from a batch's sent_at to its display, recent batches (ms)",
        default=0.0,
        minimum=0.0,
    )
    latency_p99_ms: float = wire_field(
        "99th percentile of that latency, recent batches (ms)", default=0.0, minimum=0.0
    )
    store: str = wire_field(
        "where the planes are kept: 'disk' (a run store), 'memory', or '' (no display)",
        default="",
        max_length=16,
    )
    store_path: str = wire_field(
        "the run folder the viewer writes ('' without one)", default="", max_length=4096
    )
    stored: int = wire_field("images written to the run store", default=0, minimum=0)
    unstored: Mapping[str, int] = wire_field(
        "images shown but not kept on disk, by reason: disk_full, write_failed (see "
        "store_error), no_place (no plate position, e.g. no well), no_store (no run store)",
        default_factory=dict,
        max_length=16,
    )
    store_queued_bytes: int = wire_field(
        "bytes of planes waiting for the disk", default=0, minimum=0
    )
    cache_bytes: int = wire_field(
        "bytes of planes held in RAM (at most the memory budget, plus planes the disk has "
        "not taken yet)",
        default=0,
        minimum=0,
    )
    memory_budget_bytes: int = wire_field(
        "the viewer's plane memory budget (viewer_memory_mb; 0: no bound, store = memory)",
        default=0,
        minimum=0,
    )
    store_error: str = wire_field(
        "the first store failure: its path and what to do ('' if none)",
        default="",
        max_length=4096,
    )


@dataclass(frozen=True, kw_only=True)
class ViewerState:
    """A viewer's state at a glance, carried by every pong."""

    ready: bool = wire_field("the viewer accepts and shows images")
    producers: int = wire_field("producers the viewer currently knows", minimum=0)
    received: int = wire_field("images received (copied out or lent)", minimum=0)
    dropped: int = wire_field("images and messages the viewer dropped, all reasons", minimum=0)
    queue_depth: int = wire_field("batches waiting for the display", minimum=0)
    queue_bytes: int = wire_field("bytes of pixels waiting for the display", minimum=0)
    memory_bytes: int = wire_field("resident memory of the viewer process", minimum=0)
    filtered: int = wire_field(
        "images the viewer left out by its filter (show); producers that honour the "
        "handshake's show send none",
        minimum=0,
        default=0,
    )
    display: DisplayState = wire_field(
        "what the display shows and how fast", default_factory=DisplayState
    )


@dataclass(frozen=True, kw_only=True)
class Pong(Message):
    """The viewer's identity and state; the handshake's answer."""

    TYPE: ClassVar[str] = "pong"
    PORT: ClassVar[str] = "reply"
    protocol: int = wire_field("the protocol version the viewer speaks", minimum=1)
    viewer_id: str = wire_field("random id of this viewer process run", max_length=64)
    pid: int = wire_field("the viewer's process id", minimum=1)
    host: str = wire_field("the viewer's host name", max_length=255)
    data_port: int = wire_field("its data port", minimum=1, maximum=65535)
    control_port: int = wire_field("its control port (data port + 1000)", minimum=1, maximum=65535)
    started_at: float = wire_field("when the viewer started (epoch s)")
    probe_seen: bool = wire_field(
        "the ping's probe arrived on the data port (False if the "
        "ping had no token or the wait ran out)"
    )
    state: ViewerState = wire_field("the viewer's counters at a glance")
    show: Mapping[str, tuple[str, ...]] = wire_field(
        "the viewer's filter: component -> the values it shows, e.g. "
        '{"well": ["A01", "A02"]} ("step": a step name or index; empty: everything). '
        "Producers send it nothing else and count the rest 'filtered'",
        default_factory=dict,
        max_length=64,
    )


@dataclass(frozen=True, kw_only=True)
class Attached(Message):
    """The viewer mapped the pool (and unlinked its name, if it had one)."""

    TYPE: ClassVar[str] = "attached"
    PORT: ClassVar[str] = "reply"
    pool: str = wire_field("the pool id", pattern=POOL_ID)


@dataclass(frozen=True, kw_only=True)
class Synced(Message):
    """How far the viewer is with a producer's batches: every batch up to done_seq is done."""

    TYPE: ClassVar[str] = "synced"
    PORT: ClassVar[str] = "reply"
    viewer_id: str = wire_field(
        "the viewer's id; a new one means the viewer restarted", max_length=64
    )
    done_seq: int = wire_field(
        "every batch of this producer up to here was copied out (or its lent pixels "
        "released) or dropped; its slots may be rewritten",
        minimum=0,
    )
    dropped: Mapping[str, int] = wire_field(
        f"this producer's images dropped by the viewer, {COUNTS}", max_length=64
    )
    window: int = wire_field(
        "bytes of this producer's images the viewer wants in flight in shared memory at "
        "most: its share of the viewer's window, divided among the producers attached (0: "
        "no limit); the producer carves no new slot beyond it and waits for slots to come "
        "back instead",
        default=0,
        minimum=0,
    )


@dataclass(frozen=True, kw_only=True)
class ProducerReport:
    """One producer as the viewer sees it."""

    pid: int = wire_field("its process id (0 until it attached a pool)", minimum=0)
    pool: str = wire_field("its attached pool id, '' if none", max_length=31)
    batches: int = wire_field("batches received", minimum=0)
    images: int = wire_field("images received (copied out or lent)", minimum=0)
    bytes: int = wire_field("pixel bytes received", minimum=0)
    last_seq: int = wire_field("the last batch number received", minimum=0)
    done_seq: int = wire_field("the last batch number done with", minimum=0)
    dropped: Mapping[str, int] = wire_field(f"its images dropped, {COUNTS}", max_length=64)


@dataclass(frozen=True, kw_only=True)
class StatusReport(Message):
    """All counters of the viewer."""

    TYPE: ClassVar[str] = "status_report"
    PORT: ClassVar[str] = "reply"
    viewer_id: str = wire_field("the viewer's id", max_length=64)
    state: ViewerState = wire_field("the counters at a glance")
    batches: int = wire_field("batches received", minimum=0)
    images: int = wire_field("images received (copied out or lent)", minimum=0)
    bytes: int = wire_field("pixel bytes received", minimum=0)
    dropped: Mapping[str, int] = wire_field(f"everything dropped, {COUNTS}", max_length=64)
    auth_denied: int = wire_field("connections refused by CURVE authentication", minimum=0)
    pools: int = wire_field("shared-memory pools currently mapped", minimum=0)
    producers: Mapping[str, ProducerReport] = wire_field("per producer id", max_length=4096)


@dataclass(frozen=True, kw_only=True)
class SnapshotReply(Message):
    """A PNG image of the viewer, in the frame after this header."""

    TYPE: ClassVar[str] = "snapshot_reply"
    PORT: ClassVar[str] = "reply"
    format: str = wire_field("the image format of frame 1", default="png", pattern="^png$")
    nbytes: int = wire_field("size of frame 1", minimum=0)


@dataclass(frozen=True, kw_only=True)
class LayerInfo:
    """One napari layer as the viewer shows it."""

    name: str = wire_field("the layer's name", max_length=MAX_TEXT)
    kind: str = wire_field("napari layer type: image, labels, points, shapes...", max_length=64)
    shape: tuple[int, ...] = wire_field(
        "data shape (points: (n, ndim); shapes: (n,))", max_length=64
    )
    dtype: str = wire_field("data element type ('' if not an array)", max_length=64)
    axis_labels: tuple[str, ...] = wire_field("the layer's axis labels", max_length=64)
    visible: bool = wire_field("shown or hidden")
    colormap: str = wire_field("colormap name ('' if none)", max_length=MAX_NAME)
    contrast_limits: tuple[float, ...] = wire_field("contrast limits (empty if none)", max_length=2)
    streamed: bool = wire_field("created by the stream (else the user's own layer)")


@dataclass(frozen=True, kw_only=True)
class LayersReport(Message):
    """The viewer's layers, bottom to top, and where its sliders are."""

    TYPE: ClassVar[str] = "layers_report"
    PORT: ClassVar[str] = "reply"
    layers: tuple[LayerInfo, ...] = wire_field("every layer, bottom first", max_length=65536)
    axis_labels: tuple[str, ...] = wire_field("the sliders' labels (dims)", max_length=64)
    current_step: tuple[int, ...] = wire_field("the sliders' positions", max_length=64)
    caption: str = wire_field(
        "the current slice's component values, e.g. 'Well A01 | Channel DAPI'",
        max_length=MAX_TEXT,
    )


@dataclass(frozen=True, kw_only=True)
class Shown(Message):
    """How many images the viewer has accounted for (the reply to ``wait_shown``)."""

    TYPE: ClassVar[str] = "shown"
    PORT: ClassVar[str] = "reply"
    displayed: int = wire_field("images written into layers", minimum=0)
    dropped: int = wire_field("images dropped, every reason counted", minimum=0)
    queued: int = wire_field("batches waiting for the display", minimum=0)

    @property
    def accounted(self) -> int:
        return self.displayed + self.dropped


@dataclass(frozen=True, kw_only=True)
class Ok(Message):
    """The request was done."""

    TYPE: ClassVar[str] = "ok"
    PORT: ClassVar[str] = "reply"


@dataclass(frozen=True, kw_only=True)
class Error(Message):
    """The request was not done, and why."""

    TYPE: ClassVar[str] = "error"
    PORT: ClassVar[str] = "reply"
    code: ErrorCode = wire_field("what kind of failure")
    message: str = wire_field("what went wrong, for people", max_length=MAX_TEXT)
