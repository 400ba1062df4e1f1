"""Streaming backends: ``save``/``save_batch`` of a pipeline's images to a live viewer.

Backends register by subclassing: a subclass with a ``name`` is found by
``get_backend(name)``, no table to edit. ``NapariStreamingBackend`` (``napari_stream``)
streams to persistent napari viewers over the links of ``links``; where each batch goes
and how (host, port, transport, delivery, budget, pool size) comes from its resolved
``NapariStreamingConfig``, so one backend can feed several viewers.
"""

from __future__ import annotations

import abc
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from platestream.config import (
    DeliveryMode,
    NapariStreamingConfig,
    Transport,
    current_chain,
    resolve_current,
)
from platestream.layering import (
    ComponentValue,
    ImageItem,
    LayerKind,
    checked_show,
    parse_name,
    shows,
    why_not_shown,
    why_not_shown_values,
)
from platestream.schemas import DropReason, WellsFailed, display_to_wire

from ._host_arrays import to_host_array, wire_dtype
from ._link import Link, LinkOptions, OutgoingImage, SaveReport
from ._link_registry import LINKS
from ._security import CurveClient, KeyStore, credentials_for, is_local

log = logging.getLogger(__name__)

# An ImageItem; component values (e.g. {"well": "A01", "channel": "DAPI"}); or a path.
Target = ImageItem | Mapping[str, ComponentValue] | str | os.PathLike[str]
PathParser = Callable[[str], Mapping[str, ComponentValue]]


class StreamingBackend(abc.ABC):
    """Where a pipeline's images go while it runs. Subclasses with a ``name`` register."""

    name: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[StreamingBackend]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name", "")
        if not name:
            return  # an intermediate base class
        known = StreamingBackend._registry.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"streaming backend name {name!r} is taken by {known.__qualname__}")
        StreamingBackend._registry[name] = cls

    @abc.abstractmethod
    def save_batch(
        self,
        data: Sequence[object],
        targets: Sequence[Target],
        *,
        config: Any = None,
        step_index: int = 0,
        step_name: str = "",
    ) -> SaveReport:
        """Stream ``data[i]`` described by ``targets[i]`` (an ImageItem, or a path of an
        image of step ``step_index``/``step_name``), as ``config`` (a partial
        NapariStreamingConfig, resolved over the active chain) says."""

    def save(
        self,
        data: object,
        target: Target,
        *,
        config: Any = None,
        step_index: int = 0,
        step_name: str = "",
    ) -> SaveReport:
        """Stream one image."""
        return self.save_batch(
            [data], [target], config=config, step_index=step_index, step_name=step_name
        )

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and memory; the backend cannot be used afterwards."""

    def __enter__(self) -> StreamingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def registered_backends() -> dict[str, type[StreamingBackend]]:
    return dict(StreamingBackend._registry)


def get_backend(name: str) -> type[StreamingBackend]:
    try:
        return StreamingBackend._registry[name]
    except KeyError:
        known = ", ".join(sorted(StreamingBackend._registry)) or "none"
        raise KeyError(f"no streaming backend {name!r}; registered: {known}") from None


def _json_value(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return _text(value, where)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, os.PathLike):
        return printable_path(value)
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return _json_value(value.item(), where)  # numpy scalars
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")


MAX_LAYOUT_COMPONENTS = 64  # the wire's limit (Batch.layout)


def checked_layout(layout: Mapping[str, Iterable[object]]) -> dict[str, tuple[int | str, ...]]:
    """A plate layout as the wire carries it (``Batch.layout``): component -> its distinct
    values. Raises ValueError naming a component or value that is not a name, an int or a
    string."""
    if len(layout) > MAX_LAYOUT_COMPONENTS:
        raise ValueError(
            f"declared layout: {len(layout)} components, at most {MAX_LAYOUT_COMPONENTS}"
        )
    declared: dict[str, tuple[int | str, ...]] = {}
    for component, values in layout.items():
        if not isinstance(component, str):
            raise ValueError(f"declared layout: component {component!r} is not a name")
        _text(component, "declared layout: a component name")
        row: list[int | str] = []
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | str | np.integer):
                raise ValueError(
                    f"declared layout, component {component!r}: value {value!r} is "
                    "not an int or a string"
                )
            if isinstance(value, str):
                row.append(_text(value, f"declared layout, {component!r}"))
            else:
                row.append(int(value))
        declared[component] = tuple(dict.fromkeys(row))
    return declared


def _text(value: str, where: str) -> str:
    """``value`` if it is valid Unicode; a ValueError naming ``where`` if not (a lone
    surrogate, e.g. from a file name that is not UTF-8: see ``printable_path``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{where}: {value!r} is not valid Unicode text (a lone surrogate); "
            "streamed text must be UTF-8"
        ) from None
    return value


def printable_path(path: str | os.PathLike[str]) -> str:
    """A file path as UTF-8 text: bytes that are not UTF-8 (a file name written in another
    encoding) are shown as ``\\xNN`` escapes instead of breaking the message."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class NapariStreamingBackend(StreamingBackend):
    """Streams images to persistent napari viewers (see the package docs for the wire)."""

    name = "napari_stream"

    def __init__(
        self,
        config: Any = None,
        *,
        curve: CurveClient | None = None,
        keystore: KeyStore | None = None,
        options: LinkOptions | None = None,
        path_parser: PathParser | None = None,
    ) -> None:
        """``config``: a (partial) NapariStreamingConfig, resolved over the active
        ``config_context`` chain and the defaults; each call may pass its own.
        ``curve`` forces CURVE credentials (else keys come from ``keystore`` for remote
        hosts). ``path_parser`` turns a path target into component values.
        """
        self.config = config
        self.curve = curve
        self.keystore = keystore
        self.options = options or LinkOptions()
        self.path_parser = path_parser
        self.totals = SaveReport()
        self._lossless_wait: dict[tuple[str, int], float] = {}  # budgets used, per viewer
        self._links: dict[tuple[str, int], Link] = {}
        # (given config, active chain) -> (resolved, its wire form); the keys' objects are
        # kept alive by the values, so their ids cannot be reused while cached.
        self._resolved: dict[tuple[int, int], tuple[Any, Any, Any, dict[str, Any]]] = {}
        self._refused: set[tuple[str, int]] = set()
        self._closed = False
        self._pid = os.getpid()

    # ---------------------------------------------------------------- public

    def save_batch(
        self,
        data: Sequence[object],
        targets: Sequence[Target],
        *,
        config: Any = None,
        step_index: int = 0,
        step_name: str = "",
    ) -> SaveReport:
        """Stream ``data[i]`` described by ``targets[i]``; a path target's components
        come from ``path_parser``. Never raises for viewer trouble: see the report."""
        if self._closed:
            raise RuntimeError("this streaming backend is closed")
        if len(data) != len(targets):
            raise ValueError(f"{len(data)} arrays but {len(targets)} targets")
        resolved, display = self._resolve_with_display(config)
        prepared = [
            self._prepare(d, t, step_index, step_name) for d, t in zip(data, targets, strict=True)
        ]
        _one_per_plane(prepared)
        filtered = 0
        if resolved.show:  # the config streams part of this step: the rest is not sent
            show = checked_show(resolved.show)
            kept = [
                image
                for image in prepared
                if shows(show, image.item.lookup, image.item.step_index, image.item.step_name)
            ]
            filtered, prepared = len(prepared) - len(kept), kept
        link = self._link(resolved)
        if link is None:
            report = SaveReport()
            report.dropped[DropReason.NO_VIEWER] += len(prepared)
        else:
            report = link.deliver(prepared, display, resolved.delivery, resolved.lossless_budget_s)
            if resolved.delivery is DeliveryMode.LOSSLESS:  # close() waits this long for it
                key = (link.host, link.port)
                budget = self._lossless_wait.get(key, 0.0)
                self._lossless_wait[key] = max(budget, resolved.lossless_budget_s)
        report.filtered += filtered
        self.totals.add(report)
        if report.dropped[DropReason.BUDGET]:
            log.warning(
                "lossless streaming to %s:%s: %d of %d images not delivered within %.1f s",
                resolved.napari_host,
                resolved.napari_port,
                report.dropped[DropReason.BUDGET],
                len(prepared),
                resolved.lossless_budget_s,
            )
        return report

    def declare_layout(self, layout: Mapping[str, Iterable[object]], config: Any = None) -> None:
        """Tell the viewer the component values this run will send - the plate's layout,
        e.g. ``{"well": ["A01", ...], "site": [1, 2, 3], "channel": ["DAPI", "GFP"]}`` -
        so it makes each layer at its final size at once and then only fills planes,
        instead of growing layers well by well. Optional: streams without one grow as
        they go. Call it before the first ``save_batch``; it travels with the batches
        until the viewer confirmed it (and again to a viewer that replaced it).
        Raises ValueError naming a component or value that is not an int or a string.
        """
        if self._closed:
            raise RuntimeError("this streaming backend is closed")
        declared = checked_layout(layout)
        link = self._link(self._resolve(config))
        if link is not None:
            link.declare(declared)

    def connect(self, config: Any = None, timeout_s: float = 5.0) -> bool:
        """Open the link to the configured viewer and wait (at most ``timeout_s``) for the
        handshake. Optional: call it while the pipeline sets up, so the first live images
        are not dropped for want of a viewer that simply has not answered yet."""
        if self._closed:
            raise RuntimeError("this streaming backend is closed")
        link = self._link(self._resolve(config))
        return link is not None and link.wait_up(time.monotonic() + timeout_s)

    def links(self) -> dict[tuple[str, int], Link]:
        """The links this backend uses, by (host, data port): state, viewer id, drops."""
        return dict(self._links)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for key, link in self._links.items():
            wait_s = self._lossless_wait.get(key)
            if wait_s:
                # Lossless: the viewer finishes what was sent before this producer goes (its
                # pool goes with it), within the budget and through a stall; a link's own
                # close waits 2 s only.
                link.settle(wait_s)
            LINKS.release(link)  # the last user closes it: what was not confirmed is lost
            lost = link.take_lost()  # (and a viewer replaced after the last save)
            if lost:
                self.totals.dropped[DropReason.VIEWER_LOST] += lost
            self.totals.viewer_dropped.update(link.take_viewer_dropped())
        self._links.clear()

    # --------------------------------------------------------------- helpers

    def _resolve(self, config: Any) -> Any:
        return self._resolve_with_display(config)[0]

    def _resolve_with_display(self, config: Any) -> tuple[Any, dict[str, Any]]:
        """The resolved config and its wire form; cached, as a pipeline passes the same
        config objects call after call (configs are frozen, so a hit is always current)."""
        given = config if config is not None else self.config
        if given is None:
            given = NapariStreamingConfig()
        chain = current_chain()
        key = (id(given), id(chain))
        hit = self._resolved.get(key)
        if hit is not None:
            return hit[2], hit[3]
        resolved = resolve_current(given).value
        if len(self._resolved) >= 256:
            self._resolved.clear()
        self._resolved[key] = (given, chain, resolved, display_to_wire(resolved))
        return resolved, self._resolved[key][3]

    def _prepare(
        self, data: object, target: Target, step_index: int, step_name: str
    ) -> OutgoingImage:
        array = to_host_array(data)  # wire-ready: its dtype has a (cached) wire name
        dtype = wire_dtype(array.dtype).value  # dtype.name is computed anew on every call
        if isinstance(target, ImageItem):
            item = target
        elif isinstance(target, Mapping):
            item = ImageItem(target, step_index, step_name, array.shape, dtype)
        elif isinstance(target, str | os.PathLike):
            path = os.fspath(target)
            components = (self.path_parser or _components_of)(path)
            item = ImageItem(
                components,
                step_index,
                step_name,
                array.shape,
                dtype,
                extra={"path": printable_path(path)},
            )
        else:
            raise TypeError(
                f"target must be an ImageItem, component values or a path; "
                f"got {type(target).__name__}"
            )
        if item.step_index < 0:
            raise ValueError(f"{_describe(item)}: step_index must be >= 0")
        _text(item.step_name, "step_name")
        for key, value in item.components.items():
            _text(key, "a component name")
            if isinstance(value, str):
                _text(value, f"component {key!r}")
        extra = _json_value(dict(item.extra), "extra")
        if item.kind is LayerKind.LABELS and array.dtype.kind == "f":
            array = _whole_float_labels(array, item)
            dtype = wire_dtype(array.dtype).value
        why = why_not_shown(item.kind, tuple(array.shape), dtype)
        why = why or why_not_shown_values(item.kind, array)
        if why is not None:
            raise ValueError(f"{_describe(item)}: cannot be shown: {why}")
        return OutgoingImage(item, array, extra)

    def _link(self, config: Any) -> Link | None:
        if self._pid != os.getpid():  # a forked child: the parent's links are not ours
            self._pid, self._links = os.getpid(), {}
        key = (config.napari_host, config.napari_port)
        if key in self._links:
            return self._links[key]
        if key in self._refused:
            return None
        curve = self.curve
        if curve is None:
            try:
                curve = credentials_for(config.napari_host, self.keystore)
            except OSError as err:  # this user's keys cannot be made or are not private
                self._refused.add(key)
                log.error("not streaming to %s:%s: %s; images for it are dropped", *key, err)
                return None
            if curve is None:
                self._refused.add(key)
                log.error(
                    "not streaming to %s:%s: a remote viewer needs CURVE keys (run "
                    "'platestream keys --help'); images for it are dropped",
                    *key,
                )
                return None
        transport = config.transport
        shm = transport is Transport.SHM or (
            transport is Transport.AUTO and is_local(config.napari_host)
        )
        link = LINKS.acquire(
            config.napari_host,
            config.napari_port,
            shm=shm,
            pool_bytes=config.shm_pool_mb << 20,
            curve=curve,
            options=self.options,
        )
        self._links[key] = link
        return link


def _components_of(path: str) -> dict[str, Any]:
    """A path's component values, read by the first file-name convention that fits (a
    path none reads is refused: ``UnrecognizedNameError`` names it and the conventions)."""
    return dict(parse_name(path).components)


def _one_per_plane(images: Sequence[OutgoingImage]) -> None:
    """Two images of one batch that would land on the same plane are an error: the second
    would silently replace the first."""
    seen: dict[Any, OutgoingImage] = {}
    for image in images:
        first = seen.setdefault(image.plane, image)
        if first is not image:
            raise ValueError(
                f"{_describe(first.item)} and {_describe(image.item)} would be shown on the "
                "same plane (same step and component values): give them different values "
                "(e.g. their well, site or channel), or send them in different batches"
            )


def _describe(item: ImageItem) -> str:
    """An image as a user knows it: step, component values, source path."""
    values = ", ".join(f"{k}={v}" for k, v in item.components.items())
    path = item.extra.get("path")
    where = f" ({path})" if path else ""
    return f"image of step {item.step_index} {item.step_name!r} [{values}]{where}"


def _whole_float_labels(array: np.ndarray, item: ImageItem) -> np.ndarray:
    """Float labels whose values are whole numbers (as many filters return them) become
    int32, as a user expects; anything else is refused with what was found."""
    finite = bool(np.isfinite(array).all())
    whole = finite and bool((array == np.round(array)).all())
    fits = finite and (array.size == 0 or (array.min() >= -(2**31) and array.max() < 2**31))
    if not (whole and fits):
        raise ValueError(
            f"{_describe(item)}: labels of dtype {array.dtype} must hold whole numbers that "
            "fit int32 to be converted; found fractions, NaN/inf or values out of range"
        )
    return array.astype(np.int32)


def report_failed(
    config: Any, wells: Sequence[str], step_name: str = "", reason: str = "", timeout_s: float = 2.0
) -> bool:
    """Tell the viewer of ``config`` (a resolved streaming config) that these wells failed
    in step ``step_name`` (empty: every step), so its plate overview marks them. Never
    raises: a viewer that is gone or does not answer in ``timeout_s`` is logged, False."""
    from ._control_client import ControlTimeout, request_once

    try:
        curve = credentials_for(config.napari_host)
    except OSError as err:  # e.g. KeyPermissionError: said, not raised
        log.warning("the viewer at %s is not told of failed wells: %s", config.napari_host, err)
        return False
    if curve is None:
        host = config.napari_host
        log.warning("no CURVE keys for %s: its viewer is not told of failed wells", host)
        return False
    message = WellsFailed(
        step_name=step_name, wells=tuple(str(w) for w in wells), reason=reason[:4096]
    )
    try:
        reply = request_once(
            config.napari_host, config.napari_port, message, timeout_s=timeout_s, curve=curve
        )
    except (ControlTimeout, OSError) as err:
        log.warning(
            "the viewer at %s:%s was not told of failed wells: %s",
            config.napari_host,
            config.napari_port,
            err,
        )
        return False
    return reply.message.TYPE == "ok"
