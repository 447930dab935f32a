"""Helpers shared by the stream tests: event builders and exactly-once checks over gold and the vector store."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts.ids import MetadataValue
from pipelines.contracts.search import SearchQuery
from pipelines.contracts.updates import DocumentUpdate, UpdateOp
from pipelines.lakehouse.schemas import CHUNKS
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.stream.job import start_stream

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["assert_exactly_once", "drain_delta_stream", "event", "search_docs"]

_T0 = datetime(2026, 11, 22, tzinfo=UTC)


def event(
    doc_id: str,
    op: str,
    version: int,
    *,
    text: str | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    event_id: str | None = None,
) -> DocumentUpdate:
    return DocumentUpdate(
        event_id=event_id or uuid.uuid4().hex,
        doc_id=doc_id,
        op=UpdateOp(op),
        version=version,
        text=text,
        metadata=metadata,
        ts=_T0 + timedelta(seconds=version),
    )


def search_docs(rt: Runtime, query: str, **filter: MetadataValue) -> list[str]:
    return [h.doc_id for h in search(rt, SearchQuery(query=query, top_k=10, filter=filter))]


def assert_exactly_once(rt: Runtime) -> dict[str, Any]:
    """Every gold chunk once, the vector store holding exactly gold's ids, each doc at one version."""
    gold = rt.lake.read(CHUNKS, columns=["chunk_id", "doc_id", "doc_version"]).to_pylist()
    counts = Counter(g["chunk_id"] for g in gold)
    assert all(n == 1 for n in counts.values()), [c for c, n in counts.items() if n > 1]
    stored = list(rt.vectors.iter_ids())
    stored_counts = Counter(s.id for s in stored)
    assert all(n == 1 for n in stored_counts.values())
    assert set(stored_counts) == set(counts)
    return {"chunks": len(counts)}


def drain_delta_stream(spark: SparkSession, rt: Runtime, checkpoint: Path, driver_max: int) -> None:
    """Run the stream over bronze.document_updates until it has applied every event, then stop it."""
    query = start_stream(spark, rt, source="delta", checkpoint=checkpoint, trigger_s=0.2, driver_max_events=driver_max)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
