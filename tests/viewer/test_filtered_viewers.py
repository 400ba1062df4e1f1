"""Filtered viewers: a viewer started to show part of a run receives only that part,
while another viewer of the same run receives everything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from platestream.viewer.manager import NapariStreamVisualizer

from ..waiting import wait_until
from .conftest import GUI
from .streaming import config, plate

pytestmark = [pytest.mark.gui, GUI, pytest.mark.timeout(180)]


def test_a_filtered_viewer_gets_only_its_part_while_another_gets_everything(
    ports: Callable[[int], int],
) -> None:
    first = ports(2)
    shown = {"well": ["A01"], "channel": ["1"]}
    arrays, items = plate([(1, "blur")], ["A01", "B02"], [1, 2], [1, 2])  # 8 images
    with (
        NapariStreamVisualizer(
            config(first), title="A01 DAPI", persistent=False, show=shown
        ) as part,
        NapariStreamVisualizer(config(first + 1), title="everything", persistent=False) as whole,
    ):
        for visualizer in (part, whole):
            visualizer.start_viewer(async_mode=False)
            assert visualizer.pong is not None, visualizer.error
        assert part.pong is not None and dict(part.pong.show) == {
            "well": ("A01",),
            "channel": ("1",),
        }
        sent_part = part.save_batch(arrays, items)
        sent_whole = whole.save_batch(arrays, items)
        assert sent_part is not None and sent_whole is not None
        assert sent_part.sent == 2 and sent_part.filtered == 6 and not sent_part.dropped
        assert sent_whole.sent == 8 and sent_whole.filtered == 0

        def displayed(visualizer: NapariStreamVisualizer, count: int) -> bool:
            status = visualizer.status()
            return status is not None and status.state.display.displayed >= count

        wait_until(lambda: displayed(part, 2), 30, "the filtered viewer shows its 2 images")
        wait_until(lambda: displayed(whole, 8), 30, "the other viewer shows all 8")
        part_status, whole_status = part.status(), whole.status()
        assert part_status is not None and whole_status is not None
        # the filtered images never reached the filtered viewer: not received, not dropped
        assert part_status.images == 2 and part_status.dropped == {}
        assert part_status.state.filtered == 0  # the producer honoured the handshake
        assert part_status.state.display.displayed == 2
        assert whole_status.images == 8 and whole_status.state.display.displayed == 8
