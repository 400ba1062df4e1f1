"""platestream.layering: filename -> component metadata, and the pure layer-planning engine.

A functional core: frozen values in, frozen values out; no clocks, no I/O, no Qt.

Planning::

    from platestream.layering import PlanState, update
    state = PlanState.empty(resolved_display_config)
    result = update(state, items, run=1)   # result.state, result.ops, result.superseded
"""

from ._filenames import (
    BUILTIN_PARSERS,
    FileNameError,
    FilenameParser,
    ImageXpressParser,
    OperaPhenixParser,
    ParsedName,
    RegexParser,
    UnrecognizedNameError,
    is_image,
    parse_name,
)
from ._items import (
    MAX_COORDINATE,
    MAX_PLANE_DIMS,
    ComponentValue,
    ImageItem,
    LayerKind,
    plane_key,
    why_not_shown,
    why_not_shown_values,
)
from ._ops import (
    AddAxis,
    Axis,
    ClearLayer,
    ClearPlane,
    CopyPlane,
    CreateLayer,
    InsertIndex,
    Operation,
    RemoveLayer,
    ResizePlane,
    SetAxisLabels,
    SetDtype,
    WritePlane,
)
from ._plan_queries import (
    LayerPlan,
    Placement,
    filled_planes,
    layer_plans,
    locate,
    missing_planes,
    plane_padding,
)
from ._plan_state import PlanSettings, PlanState
from ._planner import PlanError, PlanUpdate, declare, layout_of, plan, update
from ._plate_format import (
    PlateFiles,
    PlateMetadataError,
    channel_names_from_htd,
    channel_names_from_index_xml,
    detect_format,
)
from ._show import Show, checked_show, describe_show, parse_show, shows
from ._values import AxisValue, value_text

__all__ = [
    "BUILTIN_PARSERS",
    "MAX_COORDINATE",
    "MAX_PLANE_DIMS",
    "AddAxis",
    "Axis",
    "AxisValue",
    "ClearLayer",
    "ClearPlane",
    "ComponentValue",
    "CopyPlane",
    "CreateLayer",
    "FileNameError",
    "FilenameParser",
    "ImageItem",
    "ImageXpressParser",
    "InsertIndex",
    "LayerKind",
    "LayerPlan",
    "OperaPhenixParser",
    "Operation",
    "ParsedName",
    "Placement",
    "PlanError",
    "PlanSettings",
    "PlanState",
    "PlanUpdate",
    "PlateFiles",
    "PlateMetadataError",
    "RegexParser",
    "RemoveLayer",
    "ResizePlane",
    "SetAxisLabels",
    "SetDtype",
    "Show",
    "UnrecognizedNameError",
    "WritePlane",
    "channel_names_from_htd",
    "channel_names_from_index_xml",
    "checked_show",
    "declare",
    "describe_show",
    "detect_format",
    "filled_planes",
    "is_image",
    "layer_plans",
    "layout_of",
    "locate",
    "missing_planes",
    "parse_name",
    "parse_show",
    "plan",
    "plane_key",
    "plane_padding",
    "shows",
    "update",
    "value_text",
    "why_not_shown",
    "why_not_shown_values",
]
