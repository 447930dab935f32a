"""Search: dense (embed the query, ask the vector store), keyword (BM25) or hybrid (both, fused by rank)."""

from __future__ import annotations

import time

from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.contracts.search import SearchHit, SearchQuery
from pipelines.errors import InvalidInput
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import TableSpec
from pipelines.observability.metrics import SEARCH_LATENCY
from pipelines.runtime import Runtime
from pipelines.serve.fusion import reciprocal_rank_fusion
from pipelines.serve.provenance import annotate
from pipelines.vectorstore.base import VectorHit

__all__ = ["HYBRID_DEPTH", "search"]

# Candidates taken from each retriever before fusion: rank fusion needs more than top_k from each
# side, or a chunk ranked 12th by both (a strong hybrid result) would never be seen.
HYBRID_DEPTH = 50


def search(rt: Runtime, query: SearchQuery, *, tenant: str = DEFAULT_TENANT) -> list[SearchHit]:
    """Top-k chunks of ``tenant`` for the query, best first, filtered on exact metadata matches and on
    what ``query.principals`` may read (inside the k-NN: top_k is filled with readable chunks).

    Raises:
        SearchModeUnsupported: keyword or hybrid mode on a store that keeps no text (Pinecone).
        InvalidInput: an ``as_of`` that gold cannot be read at, or with a mode other than dense.
    """
    started = time.perf_counter()
    if query.as_of is not None:
        if query.mode != "dense":
            raise InvalidInput("as_of search is exact dense search over a gold snapshot: use mode dense")
        from pipelines.serve.timetravel import search_as_of

        results = annotate(rt, tenant, search_as_of(rt, query, tenant=tenant))
        SEARCH_LATENCY.labels(kind="as_of").observe(time.perf_counter() - started)
        return results
    index = rt.index()  # one index per query: a switch mid-query never mixes two
    hits = _retrieve(rt, index, query, tenant=tenant)
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
    results = annotate(rt, tenant, results)
    SEARCH_LATENCY.labels(kind="search").observe(time.perf_counter() - started)
    return results


def _retrieve(rt: Runtime, index: IndexSpec, query: SearchQuery, *, tenant: str) -> list[VectorHit]:
    store = rt.vectors_for(index)
    who = query.principals
    if query.mode == "keyword":
        return store.keyword_query(query.query, k=query.top_k, tenant=tenant, filter=query.filter, principals=who)
    depth = query.top_k if query.mode == "dense" else max(query.top_k, HYBRID_DEPTH)
    keyword = (
        store.keyword_query(query.query, k=depth, tenant=tenant, filter=query.filter, principals=who)
        if query.mode == "hybrid"
        else []
    )  # first: an unsupported store fails before the model runs
    # The query role's own model instance: a bulk encode in this process never holds it.
    vector = rt.query_embedder(index).encode_query(query.query)
    dense = store.query(vector, k=depth, tenant=tenant, filter=query.filter, principals=who)
    if query.mode == "dense":
        return dense
    by_id = {h.record.id: h for h in keyword} | {h.record.id: h for h in dense}
    fused = reciprocal_rank_fusion([[h.record.id for h in dense], [h.record.id for h in keyword]])
    return [VectorHit(record=by_id[i].record, score=score) for i, score in fused[: query.top_k]]


def _hydrate(rt: Runtime, gold: TableSpec, tenant: str, chunk_ids: list[str]) -> dict[str, str]:
    """Chunk texts from gold for stores that keep no text (Pinecone): gold is the source of truth."""
    if not chunk_ids:
        return {}
    ids = ", ".join(sql_quote(i) for i in chunk_ids)
    where = f"tenant = {sql_quote(tenant)} AND chunk_id IN ({ids})"
    rows = rt.lake.read(gold, where, columns=["chunk_id", "text"])
    return dict(zip(rows.column("chunk_id").to_pylist(), rows.column("text").to_pylist(), strict=True))
