"""Retrieval metrics as BEIR / pytrec_eval compute them: nDCG@k and Recall@k, averaged over queries.

Relevance is judged per document, as in BEIR: search answers chunks, and a document's chunks
collapse to its id where the first (best) one ranks (``best_chunk_ranking``). ``doclake eval``, the
reindex gate and ``bench/scifact.py`` all score through these functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["best_chunk_ranking", "mean_metrics", "ndcg_at_k", "recall_at_k"]


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gain ``rel / log2(rank + 1)`` (trec_eval's ndcg_cut); 0 when nothing is relevant."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    wanted = {doc for doc, r in relevant.items() if r > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def best_chunk_ranking(doc_ids_of_ranked_chunks: Sequence[str]) -> list[str]:
    """Documents ranked by their best chunk: first appearance in the chunk ranking, duplicates dropped."""
    return list(dict.fromkeys(doc_ids_of_ranked_chunks))


def mean_metrics(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], *, k: int = 10
) -> dict[str, float]:
    """Mean nDCG@k and Recall@k over every query of ``qrels`` (a query missing from ``runs`` scores 0)."""
    if not qrels:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0}
    ndcg = [ndcg_at_k(runs.get(q, []), rel, k) for q, rel in qrels.items()]
    recall = [recall_at_k(runs.get(q, []), rel, k) for q, rel in qrels.items()]
    return {f"ndcg@{k}": sum(ndcg) / len(ndcg), f"recall@{k}": sum(recall) / len(recall)}
