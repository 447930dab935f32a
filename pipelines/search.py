"""Semantic search: embed the query, ask the vector store, shape the hits."""

from __future__ import annotations

import time

from pipelines.contracts import DEFAULT_TENANT, SearchHit, SearchQuery
from pipelines.lakehouse import TableSpec, sql_quote
from pipelines.metrics import SEARCH_LATENCY
from pipelines.runtime import Runtime

__all__ = ["search"]


def search(rt: Runtime, query: SearchQuery, *, tenant: str = DEFAULT_TENANT) -> list[SearchHit]:
    """Top-k chunks of ``tenant`` for the query, best first, filtered on exact metadata matches."""
    started = time.perf_counter()
    if query.as_of is not None:
        from pipelines.timetravel import search_as_of

        results = search_as_of(rt, query, tenant=tenant)
        SEARCH_LATENCY.labels(kind="as_of").observe(time.perf_counter() - started)
        return results
    index = rt.index()
    vector = rt.embedder(index).encode_query(query.query)
    hits = rt.vectors_for(index).query(vector, k=query.top_k, tenant=tenant, filter=query.filter)
    texts = _hydrate(rt, index.gold, tenant, [h.record.id for h in hits if not h.record.text])
    results = [
        SearchHit(
            chunk_id=h.record.id,
            doc_id=h.record.doc_id,
            version=h.record.doc_version,
            filename=h.record.filename,
            text=h.record.text or texts.get(h.record.id, ""),
            score=round(h.score, 6),
            page_start=h.record.page_start,
            page_end=h.record.page_end,
            char_start=h.record.char_start,
            char_end=h.record.char_end,
            metadata=h.record.metadata,
        )
        for h in hits
    ]
    SEARCH_LATENCY.labels(kind="search").observe(time.perf_counter() - started)
    return results


def _hydrate(rt: Runtime, gold: TableSpec, tenant: str, chunk_ids: list[str]) -> dict[str, str]:
    """Chunk texts from gold for stores that keep no text (Pinecone): gold is the source of truth."""
    if not chunk_ids:
        return {}
    ids = ", ".join(sql_quote(i) for i in chunk_ids)
    where = f"tenant = {sql_quote(tenant)} AND chunk_id IN ({ids})"
    rows = rt.lake.read(gold, where, columns=["chunk_id", "text"])
    return dict(zip(rows.column("chunk_id").to_pylist(), rows.column("text").to_pylist(), strict=True))
