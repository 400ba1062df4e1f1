"""The planning benchmark runs and reports consistent figures (it is not a timed test)."""

from __future__ import annotations

from platestream.bench import planning


def test_the_benchmark_runs_and_reports_every_figure() -> None:
    figures = planning.run(repeats=1, calls=5)
    assert figures["items"] == 384 * 4 * 9
    for key, _label, _unit, _fmt in planning.ROWS:
        assert figures[key] > 0, key
    assert abs(figures["plan_vs_construct"] - figures["plan_ms"] / figures["construct_ms"]) < 1e-9
    text = planning.table(figures)
    assert "plan the whole plate at once" in text and "< 100" in text and "< 50" in text
