from __future__ import annotations

import dataclasses
import pickle

import pytest

from platestream.config import (
    UNSET,
    ConfigError,
    DimensionMode,
    NapariColormap,
    NapariDisplayConfig,
    NapariStreamingConfig,
    PipelineConfig,
    StreamingConfig,
    Unset,
    config_context,
)
from platestream.config._base import UnknownFieldError


def test_napari_streaming_config_combines_streaming_and_display() -> None:
    assert issubclass(NapariStreamingConfig, StreamingConfig)
    assert issubclass(NapariStreamingConfig, NapariDisplayConfig)
    names = set(NapariStreamingConfig.field_names())
    assert {"enabled", "persistent", "transport", "delivery", "napari_port", "napari_host"} <= names
    assert {"colormap", "channel_colormaps", "variable_size_handling", "replace_layers"} <= names
    assert {"step_mode", "well_mode", "channel_mode", "site_mode", "z_index_mode"} <= names


def test_every_field_starts_unset_and_unset_is_not_none() -> None:
    config = NapariStreamingConfig()
    assert all(getattr(config, n) is UNSET for n in config.field_names())
    assert UNSET is not None and isinstance(UNSET, Unset) and not UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET


def test_configs_are_frozen_hashable_and_pickle() -> None:
    config = NapariStreamingConfig(napari_port=6000, channel_colormaps={"DAPI": "blue"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.napari_port = 1  # type: ignore[misc]
    clone = pickle.loads(pickle.dumps(PipelineConfig(napari_streaming=config)))
    assert clone.napari_streaming == config
    assert hash(clone.napari_streaming) == hash(config)


def test_enum_values_given_as_strings_become_members() -> None:
    config = NapariStreamingConfig(colormap="viridis", channel_mode="stack")
    assert config.colormap is NapariColormap("viridis")
    assert config.channel_mode is DimensionMode.STACK
    assert config.mode("channel") is DimensionMode.STACK


def test_unknown_field_says_did_you_mean() -> None:
    with pytest.raises(UnknownFieldError, match=r"no field 'colourmap'.*did you mean 'colormap'"):
        NapariStreamingConfig(colourmap="gray")
    with pytest.raises(TypeError):  # it is also a TypeError, as Python users expect
        NapariStreamingConfig(napari_prot=5555)


def test_wrong_types_name_the_field_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        NapariStreamingConfig(colormap="viridi", napari_port="5555", enabled=1)
    message = str(info.value)
    assert "NapariStreamingConfig.colormap" in message and "did you mean 'viridis'" in message
    assert "'magma'" in message  # the allowed values are listed
    assert "napari_port: expected an integer; found str '5555'" in message
    assert "enabled: expected a boolean; found int 1" in message


@pytest.mark.parametrize("port", [0, 80, 64536, 70000])
def test_ports_are_checked_so_the_control_port_fits(port: int) -> None:
    with pytest.raises(ConfigError, match="napari_port: expected a port from 1024 to 64535"):
        NapariStreamingConfig(napari_port=port)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "gpu-07.lab.example.org"])
def test_good_hosts_pass(host: str) -> None:
    assert NapariStreamingConfig(napari_host=host).napari_host == host


@pytest.mark.parametrize("host", ["", "my host", "tcp://x", "-bad.example"])
def test_bad_hosts_fail(host: str) -> None:
    with pytest.raises(ConfigError, match="napari_host: expected a host name or IP"):
        NapariStreamingConfig(napari_host=host)


def test_control_port_is_data_port_plus_1000() -> None:
    config = NapariStreamingConfig(napari_port=5600, napari_host="10.1.2.3")
    assert (config.port, config.control_port, config.host) == (5600, 6600, "10.1.2.3")


def test_repr_shows_what_an_unset_field_resolves_to_and_from_where() -> None:
    text = repr(NapariStreamingConfig(napari_port=6000))
    assert "napari_port=6000" in text
    assert "colormap=<unset: 'gray' from default>" in text
    pipeline = PipelineConfig(napari_streaming=NapariStreamingConfig(colormap="magma"))
    with config_context(pipeline, "pipeline.toml:4"):
        assert "colormap=<unset: 'magma' from pipeline.toml:4>" in repr(NapariStreamingConfig())


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="keyword arguments only"):
        NapariStreamingConfig(True)
