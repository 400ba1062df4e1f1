"""platestream.layering: see DESIGN.md for what this package owns."""
