"""platestream.schemas: see DESIGN.md for what this package owns."""
