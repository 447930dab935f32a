"""Semantic search: embed the query, ask the vector store, shape the hits."""

from __future__ import annotations

from pipelines.contracts import DEFAULT_TENANT, SearchHit, SearchQuery
from pipelines.runtime import Runtime

__all__ = ["search"]


def search(rt: Runtime, query: SearchQuery, *, tenant: str = DEFAULT_TENANT) -> list[SearchHit]:
    """Top-k chunks of ``tenant`` for the query, best first, filtered on exact metadata matches."""
    vector = rt.embedder().encode_query(query.query)
    hits = rt.vectors.query(vector, k=query.top_k, tenant=tenant, filter=query.filter)
    return [
        SearchHit(
            chunk_id=h.record.id,
            doc_id=h.record.doc_id,
            version=h.record.doc_version,
            filename=h.record.filename,
            text=h.record.text,
            score=round(h.score, 6),
            page_start=h.record.page_start,
            page_end=h.record.page_end,
            char_start=h.record.char_start,
            char_end=h.record.char_end,
            metadata=h.record.metadata,
        )
        for h in hits
    ]
