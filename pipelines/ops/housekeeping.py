"""Housekeeping: what the running service does by itself, every ``sweep_interval_s``.

One tick re-enqueues stuck documents, compacts the Delta tables' small files and optimizes every
index's vector store (compaction, then the full-text and ANN index upkeep). ``doclake up`` runs it
in a thread; the distributed profile runs it as the ``doclake sweep --every N`` service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from pipelines.ingest.lifecycle import StuckDocument, find_stuck, touch
from pipelines.lakehouse.schemas import TABLES
from pipelines.runtime import Runtime
from pipelines.vectorstore.maintenance import compact_store

__all__ = [
    "COMPACT_MIN_FILES",
    "CompactionReport",
    "HousekeepingReport",
    "Requeue",
    "compact_small_files",
    "housekeeping_tick",
    "sweep_stuck",
]

log = logging.getLogger(__name__)

COMPACT_MIN_FILES = 64
"""A Delta table is compacted once it has this many files."""

Requeue = Callable[[StuckDocument], None]
"""Sends a stuck document's processing again, from the step its status names (the broker's side)."""


class CompactionReport(BaseModel):
    compacted: dict[str, int] = Field(description="Table name → files removed by compaction.")
    vector_stores: list[str] = Field(default_factory=list, description="Indexes whose vector store was optimized.")


class HousekeepingReport(CompactionReport):
    requeued: int = Field(description="Stuck documents sent for processing again.")
    seconds: dict[str, float] = Field(
        default_factory=dict, description="Wall time of each part of the tick: sweep, delta, vectors."
    )


def sweep_stuck(rt: Runtime, requeue: Requeue, *, older_than_s: float | None = None) -> int:
    """Re-enqueue, once, every document non-terminal for ``older_than_s`` (default ``stuck_after_s``).

    The Delta status is the truth and the broker only a wake-up call: the embedded broker has no
    visibility timeout, and even Redis loses a message when a whole worker dies before its visibility
    timeout ends; without this, such a document would stay ``extracting`` forever. Steps are
    idempotent, so a document that was merely slow is processed once more at worst. Returns how
    many documents were re-enqueued.
    """
    older = older_than_s if older_than_s is not None else rt.settings.stuck_after_s
    count = 0
    for doc in find_stuck(rt, older_than_s=older):
        if not touch(rt, doc):
            continue  # superseded since we looked
        log.warning("re-enqueueing stuck document %s v%d (%s)", doc.doc_id, doc.version, doc.status.value)
        requeue(doc)
        count += 1
    return count


def compact_small_files(rt: Runtime, *, min_files: int = COMPACT_MIN_FILES) -> CompactionReport:
    """Compact every Delta table with ``min_files`` or more files, then optimize every vector store.

    Every status change and chunk MERGE adds a small Delta file and every vector write a Lance
    fragment; this keeps reads and search fast.
    """
    return _compact(rt, min_files=min_files, seconds={})


def _compact(rt: Runtime, *, min_files: int, seconds: dict[str, float]) -> CompactionReport:
    compacted: dict[str, int] = {}
    indexes = rt.indexes()
    specs = {**TABLES, **{i.gold.name: i.gold for i in indexes}}
    began = time.monotonic()
    for spec in specs.values():
        metrics = rt.lake.compact(spec, min_files=min_files)
        if metrics is not None:
            compacted[spec.name] = int(metrics.get("numFilesRemoved", 0))
            log.info("compacted %s: %s", spec.name, metrics)
    seconds["delta"] = round(time.monotonic() - began, 3)
    began = time.monotonic()
    for index in indexes:
        compact_store(rt.vectors_for(index))
    seconds["vectors"] = round(time.monotonic() - began, 3)
    return CompactionReport(compacted=compacted, vector_stores=[i.index_id for i in indexes])


def housekeeping_tick(
    rt: Runtime, requeue: Requeue, *, older_than_s: float | None = None, min_files: int = COMPACT_MIN_FILES
) -> HousekeepingReport:
    """One pass of housekeeping: ``sweep_stuck``, then ``compact_small_files``.

    Stuck documents go first: a compaction or an ANN build can take minutes, and they should not
    wait behind it.
    """
    began = time.monotonic()
    requeued = sweep_stuck(rt, requeue, older_than_s=older_than_s)
    seconds = {"sweep": round(time.monotonic() - began, 3)}
    compaction = _compact(rt, min_files=min_files, seconds=seconds)
    return HousekeepingReport(requeued=requeued, seconds=seconds, **compaction.model_dump())
