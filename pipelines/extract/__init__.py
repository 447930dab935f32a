"""Extraction of raw bytes into text and elements, bounded in a sandbox, one module per family of formats."""

__all__: list[str] = []
