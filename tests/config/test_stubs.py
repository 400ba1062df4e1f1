"""The generated config classes are visible to tools: signatures and committed stubs."""

from __future__ import annotations

import inspect
from pathlib import Path

from platestream.config import UNSET, NapariStreamingConfig, PipelineSpec, StreamingConfig, stubgen

from ..commands import run_module

ROOT = Path(__file__).parents[2]


def test_init_signature_lists_the_fields_keyword_only() -> None:
    signature = inspect.signature(StreamingConfig)
    parameters = signature.parameters
    assert list(parameters) == [
        "enabled",
        "persistent",
        "transport",
        "delivery",
        "lossless_budget_s",
        "shm_pool_mb",
        "store",
        "store_dir",
        "store_codec",
        "viewer_memory_mb",
        "show",
        "overview",
        "overview_tile_px",
        "overview_site_layout",
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert parameters["enabled"].default is UNSET  # unset: inherited
    assert parameters["transport"].annotation == "Transport | str"
    assert "napari_port" in inspect.signature(NapariStreamingConfig).parameters


def test_a_required_field_has_no_default_and_a_concrete_one_its_default() -> None:
    parameters = inspect.signature(PipelineSpec).parameters
    assert parameters["name"].default == "pipeline"
    assert parameters["workers"].default == 0


def test_committed_stubs_match_a_fresh_rendering() -> None:
    assert stubgen.STUB_FILE.read_text() == stubgen.render(), (
        "src/platestream/config/_classes.pyi is stale: run python -m platestream.config.stubgen"
    )
    check = run_module("platestream.config.stubgen", "--check")
    assert check.returncode == 0, check.stdout


def test_the_stubs_name_every_field_and_the_package_is_typed() -> None:
    text = stubgen.STUB_FILE.read_text()
    for cls in (StreamingConfig, NapariStreamingConfig, PipelineSpec):
        assert f"class {cls.__name__}(" in text
        for name in cls.field_names():
            assert f"        {name}: " in text, name
    assert (ROOT / "src" / "platestream" / "py.typed").exists()


def test_a_type_checker_sees_the_fields(tmp_path: Path) -> None:
    """mypy reads the stubs: a wrong field name or type is an error, a right one is not."""
    script = tmp_path / "use_config.py"
    script.write_text(
        "from platestream.config import NapariStreamingConfig\n"
        "ok = NapariStreamingConfig(napari_port=5556, colormap='viridis')\n"
        "port: int = ok.napari_port\n"
        "bad = NapariStreamingConfig(napari_prot=5556)\n"
    )
    result = run_module("mypy", "--no-incremental", "--strict", str(script), timeout_s=300)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    assert ":4:" in errors[0] and "napari_prot" in errors[0]
