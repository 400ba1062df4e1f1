from __future__ import annotations

import pickle

from platestream.config import (
    ConfigLayer,
    DeliveryMode,
    NapariColormap,
    NapariStreamingConfig,
    PipelineConfig,
    config_context,
    resolve,
    resolve_current,
)


def _pipeline(**fields: object) -> PipelineConfig:
    return PipelineConfig(napari_streaming=NapariStreamingConfig(**fields))


def test_defaults_when_no_layer_sets_anything() -> None:
    resolved = resolve(NapariStreamingConfig, [])
    assert resolved.value.is_resolved()
    assert resolved.value.napari_port == 5555 and resolved.value.napari_host == "localhost"
    assert set(resolved.origins.values()) == {"default"}


def test_most_specific_layer_wins_field_by_field() -> None:
    function = ConfigLayer.python(_pipeline(colormap="magma"), "function", "otsu")
    step = ConfigLayer.python(_pipeline(colormap="viridis", delivery="lossless"), "step", "blur")
    pipeline = ConfigLayer.python(_pipeline(napari_port=6000, colormap="gray"), "pipeline")
    resolved = resolve(PipelineConfig, [function, step, pipeline])
    streaming = resolved.value.napari_streaming
    assert streaming.colormap is NapariColormap("magma")
    assert streaming.delivery is DeliveryMode.LOSSLESS
    assert streaming.napari_port == 6000
    assert streaming.enabled is False
    origins = resolved.origins
    assert origins["napari_streaming.colormap"] == "function 'otsu' (Python)"
    assert origins["napari_streaming.delivery"] == "step 'blur' (Python)"
    assert origins["napari_streaming.napari_port"] == "pipeline (Python)"
    assert origins["napari_streaming.enabled"] == "default"


def test_a_layer_that_does_not_set_the_nested_config_is_skipped() -> None:
    empty_step = ConfigLayer.python(PipelineConfig(), "step", "noop")
    pipeline = ConfigLayer.python(_pipeline(replace_layers=True), "pipeline")
    resolved = resolve(PipelineConfig, [empty_step, pipeline])
    assert resolved.value.napari_streaming.replace_layers is True
    assert resolved.origins["napari_streaming.replace_layers"] == "pipeline (Python)"


def test_none_free_resolution_and_finer_locations() -> None:
    layer = ConfigLayer(_pipeline(enabled=True), "p.toml", {"napari_streaming.enabled": "p.toml:7"})
    resolved = resolve(NapariStreamingConfig, [layer])  # a nested view of a PipelineConfig
    assert resolved.value.enabled is True
    assert resolved.origins["enabled"] == "p.toml:7"
    assert all(value is not None for _, value, _ in resolve(PipelineConfig, [layer]).rows())


def test_resolved_configs_are_plain_values_for_workers_and_the_wire() -> None:
    resolved = resolve(PipelineConfig, [ConfigLayer.python(_pipeline(site_mode="slice"), "x")])
    clone = pickle.loads(pickle.dumps(resolved.value))
    assert clone == resolved.value and clone.is_resolved()


def test_context_manager_is_a_convenience_over_the_same_resolution() -> None:
    with (
        config_context(_pipeline(colormap="fire"), "pipeline"),
        config_context(_pipeline(napari_port=7000), "step"),
    ):
        resolved = resolve_current(NapariStreamingConfig(enabled=True))
    assert resolved.value.colormap is NapariColormap("fire")
    assert resolved.value.napari_port == 7000
    assert resolved.value.enabled is True
    assert resolved.origins["napari_port"] == "step"
    assert resolve_current(NapariStreamingConfig()).value.napari_port == 5555  # popped again
