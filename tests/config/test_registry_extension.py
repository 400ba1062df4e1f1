"""The registry is the single source: a new component appears everywhere with no other edit."""

from __future__ import annotations

import json

from platestream.config import DEFAULT_REGISTRY, DimensionMode, make_config_classes
from platestream.config._components import Component
from platestream.config._toml_io import loads_pipeline
from platestream.schemas._config_schema import pipeline_file_schema
from tests.cli.test_config_cli import run_show

PLATE = Component("plate", "Plate", DimensionMode.SLICE, doc="the plate of a multi-plate run")
CLASSES = make_config_classes(DEFAULT_REGISTRY.extended(PLATE))


def test_new_component_gets_a_mode_field_with_its_default() -> None:
    assert "plate_mode" in CLASSES.napari_streaming.field_names()
    assert "plate_mode" in CLASSES.display.field_names()
    config = CLASSES.napari_streaming(plate_mode="stack")
    assert config.mode("plate") is DimensionMode.STACK
    assert CLASSES.display.specs()["plate_mode"].default is DimensionMode.SLICE


def test_new_component_is_a_toml_key() -> None:
    text = "[pipeline.napari_streaming]\nplate_mode = 'stack'\n"
    loaded = loads_pipeline(text, CLASSES)
    assert loaded.spec.pipeline.napari_streaming.plate_mode is DimensionMode.STACK


def test_new_component_is_in_the_schema() -> None:
    schema = pipeline_file_schema(CLASSES)
    prop = schema["$defs"]["NapariStreamingConfig"]["properties"]["plate_mode"]
    assert prop["enum"] == ["slice", "stack"] and prop["default"] == "slice"
    assert "Plate" in prop["description"]
    assert "plate_mode" not in json.dumps(pipeline_file_schema())  # the default set is untouched


def test_new_component_is_a_cli_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.toml"
    path.write_text("[pipeline.napari_streaming]\nplate_mode = 'stack'\n")
    report = run_show(path, CLASSES)
    row = next(line for line in report.splitlines() if "plate_mode" in line)
    assert row.split()[1:] == ["stack", f"{path}:2"]
