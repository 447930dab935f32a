"""Data products (DESIGN §5): documents (silver) and chunks (gold), each with a manifest and checks."""

__all__: list[str] = []
