"""platestream.backend: see DESIGN.md for what this package owns."""
