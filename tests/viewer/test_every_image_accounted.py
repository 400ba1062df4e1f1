"""Every image a producer hands over is displayed or counted, whatever its dtype or shape.

A producer refuses what no viewer can show (tests/backend/test_streaming_backend.py). Here
that check is switched off in the test's producer, as a forged message or another version
would arrive, and every wire dtype, a range of shapes (0-d to 32-d, zero-size) and special
values (NaN, inf, extremes) go to a real viewer process as every layer kind. The viewer
stays alive and accounts for each image: displayed, or dropped under a named reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from platestream.backend import _streaming
from platestream.layering import ImageItem, LayerKind, why_not_shown, why_not_shown_values
from platestream.schemas import WireDtype
from platestream.viewer.manager import NapariStreamVisualizer, ping

from ..waiting import wait_until
from .conftest import GUI
from .streaming import config, layers

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(240)]

SHAPES: dict[LayerKind, list[tuple[int, ...]]] = {
    LayerKind.IMAGE: [(), (8,), (0, 8), (8, 8), (2, 8, 8), (1,) * 15 + (2, 2), (1,) * 30 + (2, 2)],
    LayerKind.LABELS: [(), (8,), (8, 0), (8, 8), (1,) * 17 + (2, 2)],
    LayerKind.POINTS: [(), (5, 2), (5, 3), (0, 2), (2, 2, 2)],
    LayerKind.SHAPES: [(2, 2), (4, 2), (1, 4, 2), (1, 2, 2), (8,)],
}


def _fill(shape: tuple[int, ...], dtype: np.dtype[Any], variant: int) -> np.ndarray:
    """Ordinary values, or NaN/inf (floats) and the dtype's extremes (integers)."""
    array = np.ones(shape, dtype)
    if array.size == 0 or variant == 0:
        return array
    flat = array.reshape(-1)
    if dtype.kind in "fc":
        flat[0], flat[-1] = np.nan, np.inf
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        flat[0], flat[-1] = info.min, info.max
    return array


def cases() -> Iterator[tuple[LayerKind, np.ndarray]]:
    for kind, shapes in SHAPES.items():
        for wire, shape, variant in itertools.product(WireDtype, shapes, (0, 1)):
            yield kind, _fill(shape, np.dtype(wire.value), variant)


@pytest.fixture
def unchecked_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The producer's refusals off: images go out as a forged message would send them."""
    monkeypatch.setattr(_streaming, "why_not_shown", lambda *args: None)
    monkeypatch.setattr(_streaming, "why_not_shown_values", lambda *args: None)
    monkeypatch.setattr(_streaming, "_whole_float_labels", lambda array, item: array)


def test_any_dtype_shape_or_value_is_displayed_or_counted(
    ports: Callable[[int], int], unchecked_producer: None
) -> None:
    port = ports(1)
    all_cases = list(cases())
    expected_rejected = sum(
        (why_not_shown(kind, array.shape, array.dtype.name) or why_not_shown_values(kind, array))
        is not None
        for kind, array in all_cases
    )
    with NapariStreamVisualizer(config(port), title="fuzz", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        for site, (kind, array) in enumerate(all_cases, start=1):
            item = ImageItem({"well": "A01", "site": site}, 0, "any", array.shape, "x", kind)
            visualizer.save_batch([array], [item])  # one batch each: one apply can't hide another

        def settled() -> bool:
            status = visualizer.status()
            if status is None:
                return False
            shown = status.state.display.displayed
            return shown + sum(status.dropped.values()) >= len(all_cases)

        wait_until(settled, 180, f"{len(all_cases)} images displayed or counted")
        status = visualizer.status()
        assert status is not None
        assert ping("127.0.0.1", port) is not None  # alive and answering
        dropped = dict(status.dropped)
        shown = status.state.display.displayed
        assert shown + sum(dropped.values()) == len(all_cases), dropped
        assert dropped.get("rejected", 0) == expected_rejected
        assert dropped.get("display_failed", 0) == 0, dropped
        assert shown == len(all_cases) - expected_rejected - dropped.get("superseded", 0)

        # Afterwards an ordinary image still shows.
        plain = np.full((16, 16), 7, np.uint16)
        visualizer.save_batch([plain], [{"well": "B02", "channel": "after"}])
        wait_until(
            lambda: any("after" in layer.name for layer in layers(port).layers),
            60,
            "the ordinary image's layer",
        )


def test_the_viewers_drops_reach_the_producers_report(
    ports: Callable[[int], int], unchecked_producer: None
) -> None:
    """What the viewer drops of a producer's images comes back in the producer's reports
    (with the acknowledgements), and all of it in ``totals`` once the backend is closed."""
    from platestream.backend import NapariStreamingBackend
    from platestream.schemas import DropReason

    port = ports(1)
    with NapariStreamVisualizer(config(port), title="drops", persistent=False) as visualizer:
        visualizer.start_viewer(async_mode=False)
        backend = NapariStreamingBackend(config(port))
        odd = [np.ones((8, 8), np.complex64), np.ones(8, np.uint8), np.ones((8, 8), np.uint8)]
        report = backend.save_batch(odd, [{"well": "A01", "site": s} for s in (1, 2, 3)])
        assert report.sent == 3 and not report.dropped
        backend.close()
        assert backend.totals.viewer_dropped == {DropReason.REJECTED: 2}
