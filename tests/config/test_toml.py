from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platestream.config import CLASSES, ConfigFileError, NapariColormap, PipelineConfig, resolve
from platestream.config._chain import resolve_file, toml_layers
from platestream.config._resolve import ConfigLayer
from platestream.config._toml_io import dumps_pipeline, load_pipeline, loads_pipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "nuclei_qc.toml"


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        loads_pipeline(text, CLASSES, "p.toml")
    return [str(issue) for issue in info.value.issues]


def test_example_file_loads_and_resolves_with_line_origins() -> None:
    loaded = load_pipeline(EXAMPLE, CLASSES)
    assert [s.name for s in loaded.spec.steps] == ["flatfield", "background", "smooth", "segment"]
    resolved = resolve_file(loaded, CLASSES, "segment", "nuclei_mask")
    streaming = resolved.value.napari_streaming
    assert streaming.replace_layers is True
    assert dict(streaming.channel_colormaps) == {"DAPI": NapariColormap("magenta")}
    text = EXAMPLE.read_text().splitlines()
    origin = resolved.origins["napari_streaming.replace_layers"]
    file, line = origin.rsplit(":", 1)
    assert file == str(EXAMPLE) and text[int(line) - 1].startswith("replace_layers = true")
    assert resolved.origins["napari_streaming.transport"] == "default"


def test_all_errors_at_once_with_line_column_and_suggestions() -> None:
    issues = _issues(
        "[pipeline]\n"
        "name = 'qc'\n"
        "[pipeline.napari_streaming]\n"
        "colormap = 'viridi'\n"
        "napari_port = '5555'\n"
        "enabled = 'false'\n"
        "[[steps]]\n"
        "nmae = 'blur'\n"
    )
    assert issues == [
        issues[0],
        "p.toml:5:1: pipeline.napari_streaming.napari_port: expected an integer; found str '5555'",
        "p.toml:6:1: pipeline.napari_streaming.enabled: expected a boolean; found str 'false'",
        "p.toml:7:3: steps[0].name: missing required key 'name'",
        "p.toml:8:1: steps[0].nmae: unknown key 'nmae' (did you mean 'name'?)",
    ]
    assert issues[0].startswith("p.toml:4:1: pipeline.napari_streaming.colormap: expected one of")
    assert issues[0].endswith("found 'viridi' (did you mean 'viridis'?)")


def test_errors_inside_inline_tables_point_at_the_key() -> None:
    issues = _issues(
        "[[steps]]\nname = 'a'\n[steps.napari_streaming]\n"
        "channel_colormaps = { DAPI = 'blue', GFP = 'greeen' }\n"
    )
    assert len(issues) == 1
    assert issues[0].startswith("p.toml:4:38: steps[0].napari_streaming.channel_colormaps.GFP:")


def test_key_one_table_too_high_suggests_the_nested_key() -> None:
    issues = _issues("[[steps]]\nname = 'a'\ncolormap = 'gray'\n")
    assert issues == [
        "p.toml:3:1: steps[0].colormap: unknown key 'colormap' "
        "(did you mean napari_streaming.colormap?)"
    ]


def test_duplicate_step_names_are_an_error() -> None:
    issues = _issues("[[steps]]\nname = 'a'\n[[steps]]\nname = 'a'\n")
    assert issues == [
        "p.toml:4:1: steps[1].name: step name 'a' is already used by steps[0]; "
        "step names must be unique"
    ]


def test_syntax_errors_have_line_and_column() -> None:
    issues = _issues("[pipeline]\nname = \n")
    assert len(issues) == 1 and issues[0].startswith("p.toml:2:")
    assert "TOML syntax error" in issues[0]


def test_unreadable_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"missing\.toml: cannot read the file"):
        load_pipeline(tmp_path / "missing.toml", CLASSES)


def test_toml_and_python_layers_resolve_the_same_values() -> None:
    loaded = load_pipeline(EXAMPLE, CLASSES)
    from_toml = resolve_file(loaded, CLASSES, "smooth", "gaussian_blur").value
    step = loaded.spec.steps[2]
    python_layers = [
        ConfigLayer.python(
            PipelineConfig(napari_streaming=step.functions[0].napari_streaming),
            "function",
            "gaussian_blur",
        ),
        ConfigLayer.python(
            PipelineConfig(napari_streaming=step.napari_streaming), "step", "smooth"
        ),
        ConfigLayer.python(
            PipelineConfig(napari_streaming=loaded.spec.pipeline.napari_streaming), "pipeline"
        ),
    ]
    assert resolve(PipelineConfig, python_layers).value == from_toml
    assert len(toml_layers(loaded, CLASSES, "smooth", "gaussian_blur")) == 3


# -- load(dump(x)) == x -----------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
_toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
_params = st.dictionaries(
    _names, st.one_of(_toml_scalars, st.lists(st.integers(), max_size=3)), max_size=3
)


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), strategy)


@st.composite
def _streaming(draw: st.DrawFn) -> object:
    cls = CLASSES.napari_streaming
    choices = {
        "enabled": st.booleans(),
        "napari_port": st.integers(1024, 64535),
        "napari_host": st.sampled_from(["localhost", "10.0.0.5", "gpu.lab.example.org"]),
        "colormap": st.sampled_from([m.value for m in NapariColormap]),
        "channel_colormaps": st.dictionaries(
            _names, st.sampled_from([m.value for m in NapariColormap]), max_size=3
        ),
        "lossless_budget_s": st.floats(0.001, 86400),  # the valid range
        "channel_mode": st.sampled_from(["slice", "stack"]),
        "z_index_mode": st.sampled_from(["slice", "stack"]),
        "variable_size_handling": st.sampled_from(["separate_layers", "pad_to_max"]),
        "delivery": st.sampled_from(["live", "lossless"]),
    }
    fields = {k: draw(_maybe(v)) for k, v in choices.items()}
    return cls(**{k: v for k, v in fields.items() if v is not None})


@st.composite
def _pipeline_files(draw: st.DrawFn) -> object:
    functions = st.builds(
        lambda path, name, params, cfg: CLASSES.function_spec(
            function=path, name=name, params=params, napari_streaming=cfg
        ),
        st.from_regex(r"[a-z][a-z_.]{0,10}[a-z]:[a-z][a-z_]{0,8}", fullmatch=True),
        _names,
        _params,
        _streaming(),
    )
    step_names = draw(st.lists(_names, max_size=4, unique=True))
    steps = tuple(
        CLASSES.step_spec(
            name=name,
            functions=tuple(draw(st.lists(functions, max_size=2))),
            napari_streaming=draw(_streaming()),
        )
        for name in step_names
    )
    pipeline = CLASSES.pipeline_spec(name=draw(_names), napari_streaming=draw(_streaming()))
    return CLASSES.pipeline_file(pipeline=pipeline, steps=steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pipeline_files())
def test_load_of_dump_is_identity(spec: object) -> None:
    assert loads_pipeline(dumps_pipeline(spec), CLASSES).spec == spec
