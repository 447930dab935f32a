"""Operator work: reindex, reconcile, table maintenance, housekeeping, purge, jobs and progress."""

__all__: list[str] = []
