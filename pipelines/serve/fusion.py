"""Reciprocal rank fusion: merge ranked lists by rank alone, so BM25 and cosine scores need no calibration."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RRF_K", "reciprocal_rank_fusion"]

# The constant from Cormack, Clarke & Büttcher (SIGIR 2009); it damps the weight of the very top ranks.
RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """Ids of all ``rankings`` by descending ``Σ 1 / (k + rank)`` (ranks from 1), ties by first appearance.

    An id repeated inside one ranking counts once, at its best rank.
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    # dicts keep insertion order and sorted() is stable: equal scores keep first-appearance order.
    return sorted(scores.items(), key=lambda kv: -kv[1])
