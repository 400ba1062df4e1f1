"""The suite's reporting (not the figures: those are measured, never asserted)."""

from __future__ import annotations

from pathlib import Path

from platestream.bench import suite

RESULTS = {
    "machine": {"python": "3.11", "platform": "test"},
    "benchmarks": {
        "planning": {
            "items": 100.0,
            "plan_ms": 120.0,
            "construct_ms": 60.0,
            "plan_vs_construct": 2.0,
            "one_more_us": 10.0,
        },
        "pipeline": {
            "off_s": 10.0,
            "live_s": 10.2,
            "live_overhead": 0.02,
            "absent_s": 11.0,
            "absent_overhead": 0.1,
            "died_s": 10.1,
            "died_overhead": 0.01,
        },
    },
    "skipped": {"viewer": "HeadlessError: no display"},
}


def test_rows_carry_ratios_and_honest_verdicts() -> None:
    table = suite.markdown(RESULTS)
    assert "| layer planning | plan 100 items at once | 120.0 ms | 2.00x building them" in table
    assert "< 100 ms: MISSED" in table
    assert "to a live viewer | 10.20 s (+2.0%) | baseline 10.00 s" in table
    assert "to an absent viewer | 11.00 s (+10.0%)" in table and "< 5%: MISSED" in table
    assert "| viewer | skipped | | HeadlessError: no display | |" in table


def test_update_docs_replaces_only_its_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhand-written notes\n")
    suite.update_docs(doc, "first table\n")
    suite.update_docs(doc, "second table\n")
    text = doc.read_text()
    assert text.count(suite.BEGIN) == 1 and "second table" in text and "first table" not in text
    assert text.endswith("hand-written notes\n")


def test_each_shared_memory_target_gets_its_own_verdict() -> None:
    frames = {
        "32 MiB": {
            "plain": 14.0,
            "shm": 7.8,
            "shm_copy": 7.0,
            "fresh": 1.6,
            "inline": 1.4,
            "zmq": 1.7,
            "shm/plain": 7.8 / 14.0,
            "shm_copy/plain": 7.0 / 14.0,
            "shm/fresh": 7.8 / 1.6,
            "inline/zmq": 1.4 / 1.7,
        }
    }
    rows = suite.transport_rows(
        {"frames": frames, "save_batch_no_viewer": {"median_ms": 0.1, "max_ms": 1.0}}
    )
    shm = next(row for row in rows if row.figure.startswith("shared memory"))
    assert shm.target == ">= 10 GB/s: MISSED; >= 0.5x plain: met; >= 10x fresh: MISSED"
