"""Housekeeping the running service does by itself (operators' commands come with the reindex issue)."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from pipelines.lakehouse.schemas import TABLES
from pipelines.runtime import Runtime

__all__ = ["CompactionReport", "compact_small_files"]

log = logging.getLogger(__name__)


class CompactionReport(BaseModel):
    compacted: dict[str, int]  # table -> files removed by compaction


def compact_small_files(rt: Runtime, *, min_files: int = 64) -> CompactionReport:
    """Compact every Delta table that has accumulated ``min_files`` small files, and the vector index."""
    compacted: dict[str, int] = {}
    specs = {**TABLES, **{i.gold.name: i.gold for i in rt.indexes()}}
    for spec in specs.values():
        metrics = rt.lake.compact(spec, min_files=min_files)
        if metrics is not None:
            compacted[spec.name] = int(metrics.get("numFilesRemoved", 0))
            log.info("compacted %s: %s", spec.name, metrics)
    for index in rt.indexes():
        rt.vectors_for(index).optimize()
    return CompactionReport(compacted=compacted)
