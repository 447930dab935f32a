"""Metrics and JSON logs."""

__all__: list[str] = []
