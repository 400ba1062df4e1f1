"""Build the config classes from a component registry.

Called once at import with the default registry. Calling it with an extended registry gives
a parallel set of classes in which the new component has its ``<name>_mode`` field, and so
its TOML key, schema entry and CLI row, with no other edit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ._base import ConfigBase, strict_init
from ._components import ComponentRegistry
from ._enums import (
    DeliveryMode,
    NapariColormap,
    NapariVariableSizeHandling,
    OutputKind,
    StoreCodec,
    StoreKind,
    Transport,
)
from ._field_specs import (
    FieldSpec,
    MapOf,
    TupleOf,
    check_between,
    check_host,
    check_import_path,
    check_name,
    check_not_negative,
    check_port,
    check_show,
    check_site_grid,
    suggest,
)
from ._frozen import FrozenMap
from ._resolve import config_repr
from ._unset import UNSET

MODULE = "platestream.config"


def streaming_specs() -> list[FieldSpec]:
    return [
        FieldSpec("enabled", bool, False, "stream images to napari while the pipeline runs"),
        FieldSpec("persistent", bool, True, "keep the viewer open after the pipeline ends"),
        FieldSpec(
            "transport",
            Transport,
            Transport.AUTO,
            "how pixels travel: auto (shared memory to a local viewer, inline frames to a "
            "remote one), or shm / inline to force one",
        ),
        FieldSpec(
            "delivery",
            DeliveryMode,
            DeliveryMode.LIVE,
            "live: never wait, the newest image per plane wins when the viewer lags; "
            "lossless: every image arrives, waiting at most lossless_budget_s",
        ),
        FieldSpec(
            "lossless_budget_s",
            float,
            30.0,
            "in lossless mode, how long a producer waits for the viewer before it reports "
            "the images it could not deliver",
            check_between(0, 86400, " s (a day)"),
        ),
        FieldSpec(
            "shm_pool_mb",
            int,
            256,
            (
                "the most each producer's shared-memory pool grows to, in MiB (slots are "
                "reserved and pre-faulted when first needed, then reused)"
            ),
            check_between(0, 65536, " MiB (64 GiB)"),
        ),
        FieldSpec(
            "store",
            StoreKind,
            StoreKind.DISK,
            "where a viewer keeps what it receives: disk (an OME-Zarr run store, RAM holds "
            "at most viewer_memory_mb of it) or memory (RAM only, nothing written)",
        ),
        FieldSpec(
            "store_dir",
            str,
            "",
            "the folder a viewer's runs go to, one folder per run (empty: platestream/runs "
            "in the user's data directory, $XDG_DATA_HOME or ~/.local/share)",
        ),
        FieldSpec(
            "store_codec",
            StoreCodec,
            StoreCodec.LZ4,
            "compression of the run store's planes: lz4, zstd or none",
        ),
        FieldSpec(
            "viewer_memory_mb",
            int,
            2048,
            "how much, in MiB, a viewer with a disk store may grow over its start: recent "
            "planes, planes not yet written and the rest of the viewer; when the disk lags, "
            "producers wait or drop, as counted",
            check_between(16, 1 << 20, " MiB (1 TiB)"),
        ),
        FieldSpec(
            "show",
            MapOf(TupleOf(Any)),
            FrozenMap(),
            'what is streamed, as component -> the values shown, e.g. { well = ["A01", '
            '"A02"], channel = ["DAPI"] } (step matches a step name or index; empty: '
            "everything); set per step or function to stream part of it. The rest is "
            "counted 'filtered', never copied",
            check_show,
        ),
        FieldSpec(
            "overview",
            bool,
            True,
            "show each step's plate overview (every well a tile at its plate position, "
            "filled as wells arrive) once a plate has more than one well",
        ),
        FieldSpec(
            "overview_tile_px",
            int,
            96,
            "the side of a well's tile in the plate overview, in pixels (smaller where the "
            "plate would exceed the GPU's largest texture)",
            check_between(8, 512, " px"),
        ),
        FieldSpec(
            "overview_site_layout",
            str,
            "auto",
            "how a well's sites are laid out in its overview tile: auto (a near-square grid) "
            "or rows x columns, e.g. 3x3",
            check_site_grid,
        ),
    ]


def display_specs(registry: ComponentRegistry) -> list[FieldSpec]:
    cmap = NapariColormap
    specs = [
        FieldSpec("colormap", cmap, cmap("gray"), "colormap of image layers"),
        FieldSpec(
            "channel_colormaps",
            MapOf(cmap),
            FrozenMap(),
            'colormap per channel name or number, e.g. { DAPI = "blue" }; wins over colormap',
        ),
        FieldSpec(
            "variable_size_handling",
            NapariVariableSizeHandling,
            NapariVariableSizeHandling.SEPARATE_LAYERS,
            "images of one layer with different sizes: separate_layers or pad_to_max",
        ),
        FieldSpec(
            "replace_layers",
            bool,
            False,
            "a new run replaces a layer's contents instead of adding to them",
        ),
    ]
    from ._enums import NapariDimensionMode

    for component in registry:
        specs.append(
            FieldSpec(
                component.mode_field,
                NapariDimensionMode,
                component.default_mode,
                f"{component.label} ({component.doc}): slice = one layer per value, "
                f"stack = an axis of the layer",
            )
        )
    return specs


def napari_specs() -> list[FieldSpec]:
    return [
        FieldSpec("napari_host", str, "localhost", "host of the napari viewer", check_host),
        FieldSpec(
            "napari_port",
            int,
            5555,
            "data port of the napari viewer; its control port is this + 1000",
            check_port,
        ),
    ]


def _make(
    name: str,
    specs: list[FieldSpec],
    bases: tuple[type, ...] = (),
    namespace: dict[str, Any] | None = None,
    required: tuple[str, ...] = (),
    concrete: tuple[str, ...] = (),
    doc: str = "",
) -> type[Any]:
    """A frozen, keyword-only dataclass of ``specs`` on top of ``bases``.

    Fields default to UNSET (inherit), except ``required`` ones (no default) and
    ``concrete`` ones, which default to their spec's default (structural fields of files).
    """
    inherited: dict[str, FieldSpec] = {}
    for base in reversed(bases):
        inherited.update(getattr(base, "__specs__", {}))
    own = {spec.name: spec for spec in specs}
    fields = [(s.name, object, _dataclass_field(s, required, concrete)) for s in specs]
    ns = dict(namespace or {})
    ns["__specs__"] = {**inherited, **own}
    ns["__repr__"] = config_repr
    ns["__doc__"] = doc
    ns["__module__"] = MODULE  # make_dataclass has no module= before Python 3.12
    cls = dataclasses.make_dataclass(
        name,
        fields,
        bases=bases if any(issubclass(b, ConfigBase) for b in bases) else (*bases, ConfigBase),
        namespace=ns,
        frozen=True,
        kw_only=True,
        repr=False,  # config_repr shows what unset fields resolve to
    )
    strict_init(cls)
    return cls


def _dataclass_field(spec: FieldSpec, required: tuple[str, ...], concrete: tuple[str, ...]) -> Any:
    if spec.name in required:
        return dataclasses.field()
    if spec.name in concrete:
        if isinstance(spec.default, type):  # a nested spec class: a fresh empty one
            return dataclasses.field(default_factory=spec.default)
        return dataclasses.field(default=spec.default)
    return dataclasses.field(default=UNSET)


def _group_check(registry: ComponentRegistry) -> Any:
    names = [c.name for c in registry if not c.virtual]

    def check(value: str) -> str | None:
        if value == "" or value in names:
            return None
        return f"expected '' or a component: {', '.join(names)}; found {value!r}" + suggest(
            value, names
        )

    return check


def _mode(self: Any, component: str) -> Any:
    """The dimension mode of a registered component, e.g. ``cfg.mode("channel")``."""
    return getattr(self, f"{component}_mode")


@dataclass(frozen=True)
class ConfigClasses:
    """The config classes generated for one registry."""

    registry: ComponentRegistry
    streaming: type[Any]
    display: type[Any]
    napari_streaming: type[Any]
    pipeline: type[Any]
    function_spec: type[Any]
    step_spec: type[Any]
    pipeline_spec: type[Any]
    pipeline_file: type[Any]

    @property
    def config_classes(self) -> tuple[type[Any], ...]:
        return (self.streaming, self.display, self.napari_streaming, self.pipeline)


def make_config_classes(registry: ComponentRegistry) -> ConfigClasses:
    streaming = _make(
        "StreamingConfig",
        streaming_specs(),
        doc="How images travel to a viewer: on/off, persistence, transport and delivery.",
    )
    display = _make(
        "NapariDisplayConfig",
        display_specs(registry),
        namespace={"mode": _mode, "registry": registry},
        doc="How images are laid out and shown in napari, one mode field per component.",
    )
    napari_streaming = _make(
        "NapariStreamingConfig",
        napari_specs(),
        bases=(streaming, display),
        namespace={
            "host": property(lambda self: self.napari_host),
            "port": property(lambda self: self.napari_port),
            "control_port": property(lambda self: self.napari_port + 1000),
        },
        doc="Streaming to a napari viewer at napari_host:napari_port, and how it displays.",
    )
    nested = FieldSpec(
        "napari_streaming", napari_streaming, None, "streaming to napari and how it is shown"
    )
    pipeline = _make("PipelineConfig", [nested], doc="The config of a pipeline run.")
    config_fields = [nested]
    function_spec = _make(
        "FunctionSpec",
        [
            FieldSpec(
                "function",
                str,
                UNSET,
                "import path, e.g. 'skimage.filters:gaussian'",
                check_import_path,
            ),
            FieldSpec("name", str, "", "a label; defaults to the callable's name"),
            FieldSpec("params", MapOf(Any), FrozenMap(), "keyword arguments of the function"),
            FieldSpec(
                "output",
                OutputKind,
                OutputKind.IMAGE,
                "what the function returns: image, or labels (shown as a napari labels layer)",
            ),
            *config_fields,
        ],
        required=("function",),
        concrete=("name", "params", "output"),
        doc="One function of a step, its parameters and its config overrides.",
    )
    step_spec = _make(
        "StepSpec",
        [
            FieldSpec("name", str, UNSET, "the step's name, unique in the pipeline", check_name),
            FieldSpec("functions", TupleOf(function_spec), (), "the functions the step runs"),
            FieldSpec(
                "group_by",
                str,
                "",
                "a component whose images are stacked and given to each function together "
                "(e.g. z_index: a (Z, Y, X) stack per site and channel); empty: one image at "
                "a time",
                _group_check(registry),
            ),
            *config_fields,
        ],
        required=("name",),
        concrete=("functions", "group_by"),
        doc="One step of a pipeline and its config overrides.",
    )
    pipeline_spec = _make(
        "PipelineSpec",
        [
            FieldSpec("name", str, "pipeline", "the pipeline's name", check_name),
            FieldSpec("description", str, "", "what the pipeline does"),
            FieldSpec(
                "workers",
                int,
                0,
                "worker processes that process wells in parallel; 0: one per CPU core",
                check_not_negative,
            ),
            FieldSpec(
                "output_dir",
                str,
                "",
                "write every step's output as TIFF under this folder; empty: write nothing",
            ),
            *config_fields,
        ],
        concrete=("name", "description", "workers", "output_dir"),
        doc="The [pipeline] table: name and pipeline-wide config.",
    )
    pipeline_file = _make(
        "PipelineFile",
        [
            FieldSpec("pipeline", pipeline_spec, pipeline_spec, "the pipeline table"),
            FieldSpec("steps", TupleOf(step_spec), (), "the steps, in order"),
        ],
        concrete=("pipeline", "steps"),
        doc="A pipeline config file.",
    )
    return ConfigClasses(
        registry=registry,
        streaming=streaming,
        display=display,
        napari_streaming=napari_streaming,
        pipeline=pipeline,
        function_spec=function_spec,
        step_spec=step_spec,
        pipeline_spec=pipeline_spec,
        pipeline_file=pipeline_file,
    )


def config_fields_of(spec_instance: Any, config_cls: type[Any]) -> Any:
    """The config layer a step/function/pipeline spec carries, as a ``config_cls``."""
    names = config_cls.field_names()
    return config_cls(**{n: getattr(spec_instance, n) for n in names})
