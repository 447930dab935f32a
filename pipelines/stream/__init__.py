"""The update stream: change events in, validated, planned and written by the lakehouse writer."""

__all__: list[str] = []
