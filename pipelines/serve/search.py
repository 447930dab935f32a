"""Search: dense (embed the query, ask the vector store), keyword (BM25) or hybrid (both, fused), then
optional near-duplicate collapse, MMR diversity and cross-encoder reranking.

The stages after retrieval (``rank``) are pure functions of the candidates, so ``bench/ranking.py``
scores settings on candidates it fetched once with exactly the code ``/v1/search`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.contracts.search import RankConfig, SearchHit, SearchMode, SearchQuery
from pipelines.errors import InvalidInput, RerankerUnavailable
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import TableSpec
from pipelines.observability.metrics import SEARCH_LATENCY
from pipelines.runtime import Runtime
from pipelines.serve.diversity import collapse_near_duplicates, maximal_marginal_relevance
from pipelines.serve.fusion import reciprocal_rank_fusion, score_fusion
from pipelines.serve.provenance import annotate
from pipelines.serve.rerank import CrossEncoderReranker, load_reranker, rerank_hits
from pipelines.vectorstore.base import VectorHit, VectorStore

__all__ = ["COLLAPSE_MARGIN", "default_mode", "fuse", "rank", "resolve_mode", "search"]

# Extra dense candidates when near-duplicates are collapsed, so top_k distinct chunks remain.
COLLAPSE_MARGIN = 10

VectorsOf = Callable[[Sequence[str]], Mapping[str, Sequence[float]]]


def default_mode(store: VectorStore) -> SearchMode:
    """Hybrid where the store has keyword search (it measured best on SciFact), dense where it has not."""
    return "hybrid" if store.keyword_search else "dense"


def resolve_mode(rt: Runtime, query: SearchQuery) -> SearchMode:
    """The mode ``query`` runs in: its own, or the default of the active index's store. ``as_of`` search is dense."""
    if query.mode is not None:
        return query.mode
    if query.as_of is not None:
        return "dense"
    return default_mode(rt.vectors_for(rt.index()))


def search(rt: Runtime, query: SearchQuery, *, tenant: str = DEFAULT_TENANT) -> list[SearchHit]:
    """Top-k chunks of ``tenant`` for the query, best first, filtered on exact metadata matches and on
    what ``query.principals`` may read (inside the k-NN: top_k is filled with readable chunks).

    Raises:
        SearchModeUnsupported: keyword or hybrid mode on a store that keeps no text (Pinecone).
        RerankerUnavailable: ``rerank`` asked with no cross-encoder configured.
        InvalidInput: an ``as_of`` that gold cannot be read at, or with a mode other than dense, or with
            collapse/MMR/rerank options that exact snapshot search does not apply.
    """
    started = time.perf_counter()
    reranker = _reranker(rt) if query.rerank else None  # refused before any work
    if query.as_of is not None:
        if query.mode not in (None, "dense"):
            raise InvalidInput("as_of search is exact dense search over a gold snapshot: use mode dense")
        if query.rerank or query.mmr is not None:
            raise InvalidInput("as_of search is exact dense search over a gold snapshot: no rerank or mmr")
        from pipelines.serve.timetravel import search_as_of

        results = annotate(rt, tenant, search_as_of(rt, query, tenant=tenant))
        SEARCH_LATENCY.labels(kind="as_of").observe(time.perf_counter() - started)
        return results
    index = rt.index()  # one index per query: a switch mid-query never mixes two
    store = rt.vectors_for(index)
    mode = query.mode or default_mode(store)
    config: RankConfig = rt.settings.rank
    dense, keyword = _retrieve(rt, index, store, query, mode=mode, config=config, tenant=tenant)
    texts = _hydrate(rt, index.gold, tenant, [h.record.id for h in [*dense, *keyword] if not h.record.text])
    if texts:
        dense, keyword = _with_texts(dense, texts), _with_texts(keyword, texts)

    def vectors_of(ids: Sequence[str]) -> Mapping[str, Sequence[float]]:
        return _embeddings(rt, index.gold, tenant, list(ids))

    hits = rank(query, mode, dense, keyword, config=config, vectors_of=vectors_of, reranker=reranker)
    results = [
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
    results = annotate(rt, tenant, results)
    SEARCH_LATENCY.labels(kind="search").observe(time.perf_counter() - started)
    return results


def _needs_depth(query: SearchQuery) -> bool:
    return query.rerank or query.mmr is not None


def _retrieve(
    rt: Runtime,
    index: IndexSpec,
    store: VectorStore,
    query: SearchQuery,
    *,
    mode: SearchMode,
    config: RankConfig,
    tenant: str,
) -> tuple[list[VectorHit], list[VectorHit]]:
    """Dense and keyword candidates (one of them empty outside hybrid mode), best first."""
    depth = max(query.top_k, config.depth)
    if mode != "hybrid" and not _needs_depth(query):
        # One list is its own ranking: only collapsing needs a few more than top_k.
        depth = min(depth, query.top_k + COLLAPSE_MARGIN) if query.collapse_duplicates else query.top_k
    keyword = (
        store.keyword_query(query.query, k=depth, tenant=tenant, filter=query.filter, principals=query.principals)
        if mode != "dense"
        else []
    )  # first: an unsupported store fails before the model runs
    if mode == "keyword":
        return [], keyword
    # The query role's own model instance: a bulk encode in this process never holds it.
    vector = rt.query_embedder(index).encode_query(query.query)
    dense = store.query(vector, k=depth, tenant=tenant, filter=query.filter, principals=query.principals)
    return dense, keyword


def fuse(
    mode: SearchMode, dense: Sequence[VectorHit], keyword: Sequence[VectorHit], config: RankConfig
) -> list[VectorHit]:
    """One ranked candidate list: the mode's own list, or in hybrid mode both fused as ``config`` says."""
    if mode == "dense":
        return list(dense)
    if mode == "keyword":
        return list(keyword)
    by_id = {h.record.id: h for h in keyword} | {h.record.id: h for h in dense}
    weights = (config.dense_weight, config.keyword_weight)
    if config.fusion == "score":
        fused = score_fusion(
            [[(h.record.id, h.score) for h in dense], [(h.record.id, h.score) for h in keyword]], weights=weights
        )
    else:
        fused = reciprocal_rank_fusion(
            [[h.record.id for h in dense], [h.record.id for h in keyword]], k=config.rrf_k, weights=weights
        )
    return [VectorHit(record=by_id[i].record, score=score) for i, score in fused]


def rank(
    query: SearchQuery,
    mode: SearchMode,
    dense: Sequence[VectorHit],
    keyword: Sequence[VectorHit],
    *,
    config: RankConfig,
    vectors_of: VectorsOf | None = None,
    reranker: CrossEncoderReranker | None = None,
) -> list[VectorHit]:
    """The top ``query.top_k`` of the candidates: fused, near-duplicates collapsed, reranked, diversified.

    Reranking comes before MMR so that diversity trades off against the better relevance estimate.
    ``vectors_of`` gives chunk vectors by id (MMR needs them; search reads them from gold).
    """
    hits = fuse(mode, dense, keyword, config)
    if query.collapse_duplicates:
        wanted = max(query.top_k, config.rerank_depth if query.rerank else 0, config.depth if query.mmr else 0)
        hits = collapse_near_duplicates(hits, limit=wanted)
    if query.rerank:
        if reranker is None:
            raise RerankerUnavailable("rerank asked, but no reranker was given")
        hits = rerank_hits(query.query, hits, reranker, depth=config.rerank_depth)
    if query.mmr is not None and hits:
        pool = hits[: max(query.top_k, config.rerank_depth if query.rerank else config.depth)]
        vectors = vectors_of([h.record.id for h in pool]) if vectors_of is not None else {}
        hits = maximal_marginal_relevance(pool, vectors, lambda_=query.mmr, k=query.top_k)
    return hits[: query.top_k]


def _reranker(rt: Runtime) -> CrossEncoderReranker:
    path: Path | None = rt.settings.rerank_model
    if path is None:
        raise RerankerUnavailable("rerank needs a cross-encoder: set DOCLAKE_RERANK_MODEL to a local model folder")
    return load_reranker(path)


def _with_texts(hits: list[VectorHit], texts: Mapping[str, str]) -> list[VectorHit]:
    return [
        h
        if h.record.text
        else VectorHit(record=h.record.model_copy(update={"text": texts.get(h.record.id, "")}), score=h.score)
        for h in hits
    ]


def _hydrate(rt: Runtime, gold: TableSpec, tenant: str, chunk_ids: list[str]) -> dict[str, str]:
    """Chunk texts from gold for stores that keep no text (Pinecone): gold is the source of truth."""
    if not chunk_ids:
        return {}
    ids = ", ".join(sql_quote(i) for i in dict.fromkeys(chunk_ids))
    where = f"tenant = {sql_quote(tenant)} AND chunk_id IN ({ids})"
    rows = rt.lake.read(gold, where, columns=["chunk_id", "text"])
    return dict(zip(rows.column("chunk_id").to_pylist(), rows.column("text").to_pylist(), strict=True))


def _embeddings(rt: Runtime, gold: TableSpec, tenant: str, chunk_ids: list[str]) -> dict[str, list[float]]:
    """Chunk vectors from gold (the stores return none with their hits), for MMR."""
    if not chunk_ids:
        return {}
    ids = ", ".join(sql_quote(i) for i in dict.fromkeys(chunk_ids))
    where = f"tenant = {sql_quote(tenant)} AND chunk_id IN ({ids})"
    rows = rt.lake.read(gold, where, columns=["chunk_id", "embedding"])
    return {
        cid: emb
        for cid, emb in zip(rows.column("chunk_id").to_pylist(), rows.column("embedding").to_pylist(), strict=True)
        if emb
    }
