"""platestream.layering: filename -> component metadata, and the pure layer-planning engine.

A functional core: frozen values in, frozen values out; no clocks, no I/O, no Qt.

Planning::

    from platestream.layering import PlanState, update
    state = PlanState.empty(resolved_display_config)
    result = update(state, items, run=1)   # result.state, result.ops, result.superseded
"""

from .items import ComponentValue, ImageItem, LayerKind
from .ops import (
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
from .planner import PlanError, PlanUpdate, plan, update
from .state import PlanSettings, PlanState
from .values import AxisValue
from .views import (
    LayerPlan,
    Placement,
    filled_planes,
    layer_plans,
    locate,
    missing_planes,
    plane_padding,
)

__all__ = [
    "AddAxis",
    "Axis",
    "AxisValue",
    "ClearLayer",
    "ClearPlane",
    "ComponentValue",
    "CopyPlane",
    "CreateLayer",
    "ImageItem",
    "InsertIndex",
    "LayerKind",
    "LayerPlan",
    "Operation",
    "Placement",
    "PlanError",
    "PlanSettings",
    "PlanState",
    "PlanUpdate",
    "RemoveLayer",
    "ResizePlane",
    "SetAxisLabels",
    "SetDtype",
    "WritePlane",
    "filled_planes",
    "layer_plans",
    "locate",
    "missing_planes",
    "plan",
    "plane_padding",
    "update",
]
