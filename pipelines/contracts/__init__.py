"""Typed contracts: the shapes that cross a boundary (API, broker, tables, vector store), exportable as JSON Schema."""

__all__: list[str] = []
