"""Benchmarks of platestream (figures, not timed tests); see docs/benchmarks.md."""
