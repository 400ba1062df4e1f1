"""A run's session below the viewers' (pipeline._priority), on the real kernel interface."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from platestream.pipeline._priority import autogroup_nice

CHILD = """
import json
from platestream.pipeline import session_nicer
from platestream.pipeline._priority import AUTOGROUP, autogroup_nice
seen = [autogroup_nice()]
with session_nicer(10) as outer:
    with session_nicer(10) as inner:
        seen.append(autogroup_nice())
    seen.append(autogroup_nice())  # the outer run still holds it
seen.append(autogroup_nice())
with session_nicer(10):
    AUTOGROUP.write_text("15")  # someone else changes it meanwhile: theirs stays
seen.append(autogroup_nice())
print(json.dumps({"seen": seen, "took": [outer, inner]}))
"""


@pytest.mark.skipif(autogroup_nice() is None, reason="no autogroup scheduling here")
def test_a_run_session_goes_nicer_while_held_and_comes_back_after() -> None:
    # In a session of its own, so this test's session is not touched.
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["took"] == [True, True]
    assert result["seen"] == [0, 10, 10, 0, 15]


def test_no_change_asked_is_no_change() -> None:
    from platestream.pipeline import session_nicer

    before = autogroup_nice()
    with session_nicer(0) as took:
        assert not took
        assert autogroup_nice() == before
