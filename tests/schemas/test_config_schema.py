from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema

from platestream.schemas._config_schema import SCHEMA_PATH, pipeline_file_schema, render

ROOT = Path(__file__).parents[2]


def test_committed_schema_matches_a_fresh_generation() -> None:
    assert SCHEMA_PATH.read_text() == render(pipeline_file_schema()), (
        "the committed schema is stale: run python -m platestream.schemas._config_schema"
    )


def test_schema_is_valid_and_accepts_the_examples() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in ROOT.glob("examples/*.toml"):
        errors = list(validator.iter_errors(tomllib.loads(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"


def test_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    bad = {
        "pipeline": {"napari_streaming": {"colormap": "viridi", "napari_port": "5555"}},
        "steps": [{"nmae": "x"}],
    }
    paths = sorted(tuple(map(str, e.absolute_path)) for e in validator.iter_errors(bad))
    assert paths == [
        ("pipeline", "napari_streaming", "colormap"),
        ("pipeline", "napari_streaming", "napari_port"),
        ("steps", "0"),
        ("steps", "0"),  # unknown key 'nmae' and missing 'name'
    ]
