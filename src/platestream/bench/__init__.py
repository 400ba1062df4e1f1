"""Benchmarks that print figures (not timed tests): ``python -m platestream.bench.<name>``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def report(results: dict[str, Any], render: Callable[[dict[str, Any]], str], as_json: bool) -> int:
    """Print a benchmark's table (and its raw figures as JSON); the exit status, 0."""
    print(render(results))
    if as_json:
        print(json.dumps(results, indent=2))
    return 0
