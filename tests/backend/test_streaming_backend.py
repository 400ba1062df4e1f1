"""The StreamingBackend interface: registration by subclassing, inputs, lifecycle."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from platestream.backend import (
    NapariStreamingBackend,
    Receiver,
    ReceiverOptions,
    SaveReport,
    StreamingBackend,
    get_backend,
    registered_backends,
)
from platestream.config import NapariStreamingConfig, config_context
from platestream.layering import ImageItem, LayerKind, UnrecognizedNameError

from .helpers import config

Make = Callable[..., NapariStreamingBackend]


def test_napari_stream_is_registered_by_its_name() -> None:
    assert get_backend("napari_stream") is NapariStreamingBackend
    assert registered_backends()["napari_stream"] is NapariStreamingBackend
    with pytest.raises(KeyError, match="napari_stream"):
        get_backend("nope")


def test_a_subclass_with_a_name_registers_itself() -> None:
    class MemoryBackend(StreamingBackend):
        name = "test_memory"

        def save_batch(
            self, data: Sequence[object], targets: Sequence[Any], **kwargs: Any
        ) -> SaveReport:
            return SaveReport(sent=len(data))

        def close(self) -> None:
            pass

    assert get_backend("test_memory") is MemoryBackend
    with MemoryBackend() as backend:
        assert backend.save(np.zeros(1), "x.tif").sent == 1

    with pytest.raises(TypeError, match="taken"):

        class Impostor(StreamingBackend):
            name = "napari_stream"


def test_paths_are_targets_too(make_backend: Make, receiver: Receiver) -> None:
    def parse(path: str) -> dict[str, Any]:
        return {"well": Path(path).stem.split("_")[0]}

    backend = make_backend(config(receiver.data_port, delivery="lossless"), path_parser=parse)
    report = backend.save(
        np.ones((4, 4), np.float32), Path("/plate/B03_s1.tif"), step_index=2, step_name="blur"
    )
    assert report.sent == 1
    assert receiver.wait(5)
    item = receiver.take()[0].images[0].item
    assert item.components == {"well": "B03"} and item.step_index == 2
    assert item.extra == {"path": "/plate/B03_s1.tif"}
    assert item.shape == (4, 4) and item.dtype == "float32"


def test_paths_are_read_by_their_microscope_naming_by_default(
    make_backend: Make, receiver: Receiver
) -> None:
    """Three paths of different wells and sites: three planes, none overwritten."""
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    paths = [
        "/p/plate_A01_s1_w1.tif",
        "/p/plate_A01_s2_w1.tif",
        "/p/r02c03f01p01-ch2sk1fk1fl1.tiff",
    ]
    report = backend.save_batch([np.ones((4, 4), np.uint16)] * 3, paths)
    assert report.sent == 3
    assert receiver.wait(5)
    items = [image.item for batch in receiver.take() for image in batch.images]
    assert [dict(item.components) for item in items] == [
        {"well": "A01", "site": 1, "channel": 1},
        {"well": "A01", "site": 2, "channel": 1},
        {"well": "B03", "site": 1, "z_index": 1, "channel": 2, "timepoint": 1},
    ]


def test_a_path_no_convention_reads_is_refused_naming_it(
    make_backend: Make, receiver: Receiver
) -> None:
    backend = make_backend(config(receiver.data_port))
    with pytest.raises(UnrecognizedNameError, match=r"notes/scan 7\.tif"):
        backend.save_batch([np.ones((4, 4), np.uint16)], ["notes/scan 7.tif"])


def test_two_images_on_one_plane_in_a_batch_are_an_error_not_an_overwrite(
    make_backend: Make, receiver: Receiver
) -> None:
    backend = make_backend(config(receiver.data_port))
    arrays = [np.ones((4, 4), np.uint16), np.zeros((4, 4), np.uint16)]
    with pytest.raises(ValueError, match=r"well=A01.*well=A01.*same plane"):
        backend.save_batch(arrays, [{"well": "A01"}, {"well": "A01"}])
    with pytest.raises(ValueError, match="same plane"):
        backend.save_batch(arrays, ["/p/x_A01_s1_w1.tif", "/q/y_A01_s1_w1.tif"])
    assert backend.totals.sent == 0  # refused before anything was sent


def test_the_config_resolves_over_the_active_context(
    make_backend: Make, receiver: Receiver
) -> None:
    backend = make_backend(NapariStreamingConfig(colormap="viridis"))
    outer = config(receiver.data_port, delivery="lossless", channel_mode="stack")
    with config_context(outer):
        backend.save(np.ones((2, 2), np.uint8), ImageItem({}, 0, "s", (2, 2), "uint8"))
    assert receiver.wait(5)
    display = receiver.take()[0].display
    assert display.colormap.value == "viridis" and display.channel_mode.value == "stack"
    assert display.napari_port == receiver.data_port


def test_the_same_config_in_another_context_resolves_again(
    make_backend: Make, receiver: Receiver
) -> None:
    # Resolutions are cached per (config, chain): a new chain must not reuse an old one.
    backend = make_backend(NapariStreamingConfig(delivery="lossless"))
    item = ImageItem({}, 0, "s", (2, 2), "uint8")
    modes = []
    for mode in ("stack", "slice", "stack"):
        with config_context(config(receiver.data_port, channel_mode=mode)):
            assert backend.save(np.ones((2, 2), np.uint8), item).sent == 1
        assert receiver.wait(5)
        modes.append(receiver.take()[0].display.channel_mode.value)
    assert modes == ["stack", "slice", "stack"]


def test_bad_inputs_are_clear_errors(make_backend: Make) -> None:
    backend = make_backend(config(5555))
    with pytest.raises(ValueError, match="2 arrays but 1 targets"):
        backend.save_batch([np.zeros(1), np.zeros(1)], ["a"])
    with pytest.raises(TypeError, match="cannot stream"):
        backend.save([1, 2, 3], "a.tif")
    with pytest.raises(TypeError, match="component values or a path"):
        backend.save(np.zeros(1), 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        backend.save(np.zeros(1), ImageItem({}, 0, "s", (1,), "float64", extra={"f": object()}))
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.save(np.zeros(1), "a.tif")


def test_component_values_are_targets_too(make_backend: Make, receiver: Receiver) -> None:
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    report = backend.save_batch(
        [np.zeros((3, 3), np.uint16)] * 2,
        [{"well": "C07", "channel": "GFP"}, {"well": "C07", "channel": "RFP"}],
        step_index=4,
        step_name="mask",
    )
    assert report.sent == 2
    assert receiver.wait(5)
    items = [image.item for batch in receiver.take() for image in batch.images]
    assert [dict(i.components) for i in items] == [
        {"well": "C07", "channel": "GFP"},
        {"well": "C07", "channel": "RFP"},
    ]
    assert {(i.step_index, i.step_name, i.shape) for i in items} == {(4, "mask", (3, 3))}


def test_a_forked_child_streams_through_links_of_its_own(
    make_backend: Make, receiver: Receiver
) -> None:
    import os

    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    backend.save(np.ones((2, 2), np.uint8), {"site": 1})
    assert receiver.wait(5)
    receiver.take()
    pid = os.fork()
    if pid == 0:  # the child: stream once, leave without running the parent's cleanup
        code = 1
        try:
            child = backend.save(np.full((2, 2), 2, np.uint8), {"site": 2})
            (link,) = backend.links().values()
            code = 0 if child.sent == 1 and link.flush(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert receiver.wait(5)
    (batch,) = receiver.take()
    assert batch.images[0].data[0, 0] == 2
    assert backend.save(np.ones((2, 2), np.uint8), {"site": 3}).sent == 1  # parent unharmed


@pytest.mark.parametrize(
    ("array", "kind", "expected"),
    [
        (np.ones((8, 8), np.complex128), LayerKind.IMAGE, "complex data send np.abs"),
        (np.full((8, 8), 1.5, np.float32), LayerKind.LABELS, "whole numbers"),
        (np.full((8, 8), np.nan, np.float32), LayerKind.LABELS, "NaN/inf"),
        (np.array(7, np.uint8), LayerKind.IMAGE, "expected 2 to 16 axes"),
        (np.ones(8, np.uint8), LayerKind.IMAGE, "expected 2 to 16 axes"),
        (np.ones((0, 8), np.uint8), LayerKind.IMAGE, "at least one pixel"),
        (np.ones((1,) * 17 + (2, 2), np.uint8), LayerKind.IMAGE, "expected 2 to 16 axes"),
        (np.ones((4, 3)), LayerKind.POINTS, "(N, 2)"),
        (np.ones((2, 2)), LayerKind.SHAPES, "V >= 3"),
        (np.ones((4, 4), np.float64), LayerKind.LABELS, None),  # whole floats: converted
    ],
)
def test_the_producer_refuses_what_no_viewer_can_show(
    make_backend: Make, receiver: Receiver, array: np.ndarray, kind: LayerKind, expected: str | None
) -> None:
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    item = ImageItem({"well": "B03", "site": 2}, 1, "seg", array.shape, array.dtype.name, kind)
    if expected is None:
        assert backend.save(array, item).sent == 1
        assert receiver.wait(10)
        (batch,) = receiver.take()
        assert batch.images[0].data.dtype == np.int32  # float labels of whole values
        np.testing.assert_array_equal(batch.images[0].data, 1)
        return
    with pytest.raises(ValueError, match=r"cannot be shown|labels of dtype") as raised:
        backend.save(array, item)
    message = str(raised.value)
    assert expected in message
    assert "step 1 'seg'" in message and "well=B03" in message  # names the image
    assert backend.totals.sent == 0  # nothing of the batch went out


def test_a_dtype_the_wire_cannot_carry_is_a_type_error(make_backend: Make) -> None:
    backend = make_backend(config(5599))
    for array in (np.array([["a"]]), np.ones((2, 2), "datetime64[s]"), np.ones((2, 2), object)):
        with pytest.raises(TypeError, match="expected one of"):
            backend.save(array, {"well": "A01"})


def test_a_file_name_that_is_not_utf8_streams_with_escapes(
    make_backend: Make, receiver: Receiver, tmp_path: Path
) -> None:
    """A plate file written under another encoding (a byte that is not UTF-8) must not
    break the message; the path is shown with a \\xNN escape."""
    name = os.fsdecode(b"pl\xffte_A01_s1_w1.tif")  # a lone surrogate in the str
    backend = make_backend(config(receiver.data_port, delivery="lossless"))
    assert backend.save(np.zeros((4, 4), np.uint8), tmp_path / name).sent == 1
    assert receiver.wait(10)
    (batch,) = receiver.take()
    assert batch.images[0].item.extra["path"].endswith("pl\\xffte_A01_s1_w1.tif")


def test_text_that_is_not_unicode_is_refused_naming_the_field(make_backend: Make) -> None:
    backend = make_backend(config(5598))
    with pytest.raises(ValueError, match=r"step_name.*not valid Unicode"):
        backend.save(np.zeros((4, 4), np.uint8), {"well": "A01"}, step_name="bl\ud800r")
    with pytest.raises(ValueError, match=r"component 'well'.*not valid Unicode"):
        backend.save(np.zeros((4, 4), np.uint8), {"well": "A\udfff1"})


def _layouts_after(receiver: Receiver, backend: NapariStreamingBackend, site: int) -> list[Any]:
    """Send one lossless image; the layouts the viewer got with it."""
    report = backend.save(np.zeros((8, 8), np.uint16), {"well": "A01", "site": site})
    assert report.sent == 1
    assert receiver.wait(10)
    batches = receiver.take()
    assert batches
    for batch in batches:
        batch.release()
    return receiver.take_layouts()


def test_a_declared_layout_rides_until_acknowledged_and_again_to_a_new_viewer() -> None:
    receiver = Receiver(ReceiverOptions(port=0)).start()
    port = receiver.data_port
    backend = NapariStreamingBackend(config(port, delivery="lossless"))
    try:
        backend.declare_layout(
            {"well": ["A01", "B02"], "site": np.arange(1, 4), "channel": ["DAPI"]}
        )
        expected = {"well": ("A01", "B02"), "site": (1, 2, 3), "channel": ("DAPI",)}
        assert _layouts_after(receiver, backend, 1) == [expected]
        (link,) = backend.links().values()
        assert link.flush(10)  # the batch that carried it is acknowledged: not sent again
        assert _layouts_after(receiver, backend, 2) == []
        receiver.close()  # the viewer is replaced by a new one on the same port
        receiver = Receiver(ReceiverOptions(port=port)).start()
        assert backend.connect(timeout_s=20)
        assert _layouts_after(receiver, backend, 3) == [expected]
    finally:
        backend.close()
        receiver.close()


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"site": [1, 1.5]}, "component 'site': value 1.5 is not an int or a string"),
        ({"well": ["A01", None]}, "component 'well': value None is not an int or a string"),
        ({"site": [True]}, "value True is not an int or a string"),
        ({3: [1]}, "component 3 is not a name"),
        ({f"c{i}": [1] for i in range(65)}, "65 components, at most 64"),
    ],
)
def test_a_layout_that_cannot_be_sent_is_refused_at_the_producer(layout: Any, message: str) -> None:
    backend = NapariStreamingBackend(config(45999))  # refused before any link is made
    try:
        with pytest.raises(ValueError, match=re.escape(message)):
            backend.declare_layout(layout)
    finally:
        backend.close()
