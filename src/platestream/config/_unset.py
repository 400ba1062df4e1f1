"""The placeholder for a config field that a layer leaves unset.

``None`` can be a real value, so "not set here, inherit it" needs its own marker.
"""

from __future__ import annotations

from typing import Any, Final


class Unset:
    """Singleton marker: this field inherits its value from a less specific layer."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unset>"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> tuple[type[Unset], tuple[()]]:
        # Pickling to worker processes must give back the same singleton.
        return (Unset, ())

    def __copy__(self) -> Unset:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Unset:
        return self


#: Typed as Any so a field annotated ``int`` may default to it; ``resolve`` guarantees a
#: resolved config never holds it.
UNSET: Final[Any] = Unset()


def is_unset(value: object) -> bool:
    return value is UNSET
