"""Benchmarks that print figures (not timed tests): ``python -m platestream.bench.<name>``."""
