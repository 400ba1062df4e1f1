"""platestream.pipeline: see DESIGN.md for what this package owns."""
