"""Fusion of ranked lists: (weighted) reciprocal rank fusion and normalised score fusion.

Rank fusion needs no calibration between BM25 and cosine scores; score fusion keeps how far apart the
candidates of one list are (a clear first hit stays clearly first), after rescaling each list to
[0, 1] so the two scales become comparable. Search and the benchmarks call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RRF_K", "reciprocal_rank_fusion", "score_fusion"]

# The constant from Cormack, Clarke & Büttcher (SIGIR 2009); it damps the weight of the very top ranks.
RRF_K = 60


def _check_weights(n: int, weights: Sequence[float] | None) -> Sequence[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} rankings")
    if any(w < 0 for w in weights):
        raise ValueError("fusion weights must not be negative")
    return weights


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Ids of all ``rankings`` by descending ``Σ w_i / (k + rank_i)`` (ranks from 1), ties by first appearance.

    An id repeated inside one ranking counts once, at its best rank. ``weights`` (one per ranking,
    default all 1) shift trust between retrievers without changing how ranks are damped.
    """
    ws = _check_weights(len(rankings), weights)
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, ws, strict=True):
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
    # dicts keep insertion order and sorted() is stable: equal scores keep first-appearance order.
    return sorted(scores.items(), key=lambda kv: -kv[1])


def score_fusion(
    scored: Sequence[Sequence[tuple[str, float]]], *, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Ids by descending ``Σ w_i · minmax_i(score)``: each list rescaled to [0, 1] (its best 1, its worst 0).

    An id missing from a list gets 0 from it, as if ranked below that list's last candidate. A list
    whose scores are all equal counts 1 for each of its ids. Ties keep first appearance.
    """
    ws = _check_weights(len(scored), weights)
    fused: dict[str, float] = {}
    for items, w in zip(scored, ws, strict=True):
        if not items:
            continue
        best: dict[str, float] = {}
        for item, s in items:
            best[item] = max(s, best.get(item, s))
        hi, lo = max(best.values()), min(best.values())
        span = hi - lo
        for item, s in best.items():
            fused[item] = fused.get(item, 0.0) + w * ((s - lo) / span if span > 0 else 1.0)
    return sorted(fused.items(), key=lambda kv: -kv[1])
