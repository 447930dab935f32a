"""Result diversity: near-duplicate collapse and maximal marginal relevance (MMR) over ranked hits.

Both keep the order they are given where they do not drop or move a hit, so they compose with any
ranking before them (dense, keyword, fused, reranked).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pipelines.vectorstore.base import VectorHit

__all__ = ["NEAR_DUPLICATE_JACCARD", "collapse_near_duplicates", "maximal_marginal_relevance", "normalized_words"]

# Word 3-shingle Jaccard at or above which two chunks count as one: the same paragraph re-uploaded with
# a changed date or signature line stays above it, two different paragraphs of one template fall below.
NEAR_DUPLICATE_JACCARD = 0.9
_WORD = re.compile(r"\w+")


def normalized_words(text: str) -> list[str]:
    """Lower-cased words of ``text``, punctuation and spacing dropped."""
    return _WORD.findall(text.lower())


def _shingles(words: list[str]) -> frozenset[tuple[str, ...]]:
    if len(words) < 3:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + 3]) for i in range(len(words) - 2))


def collapse_near_duplicates(
    hits: Sequence[VectorHit], *, threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[VectorHit]:
    """``hits`` in order without those nearly identical to a better one (same words, ignoring case and
    punctuation, or word 3-shingle Jaccard ≥ ``threshold``). Hits without text are never collapsed."""
    kept: list[VectorHit] = []
    seen_exact: set[tuple[str, ...]] = set()
    seen_shingles: list[frozenset[tuple[str, ...]]] = []
    for hit in hits:
        words = normalized_words(hit.record.text)
        if not words:
            kept.append(hit)
            continue
        key = tuple(words)
        if key in seen_exact:
            continue
        shingles = _shingles(words)
        if any(len(shingles & s) / len(shingles | s) >= threshold for s in seen_shingles):
            continue
        seen_exact.add(key)
        seen_shingles.append(shingles)
        kept.append(hit)
    return kept


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def maximal_marginal_relevance(
    hits: Sequence[VectorHit], vectors: Mapping[str, Sequence[float]], *, lambda_: float, k: int
) -> list[VectorHit]:
    """The best ``k`` of ``hits`` chosen one at a time by ``λ·relevance - (1 - λ)·max similarity`` to the
    ones already chosen (Carbonell & Goldstein, 1998).

    Relevance is the hit's score rescaled to [0, 1] over ``hits`` — so it works on cosine, BM25, fused
    or reranker scores alike; similarity is the cosine of the chunks' vectors (``vectors`` by chunk id;
    a hit without a vector is similar to nothing). Each chosen hit keeps its own score.
    """
    if not hits:
        return []
    scores = [h.score for h in hits]
    hi, lo = max(scores), min(scores)
    relevance = [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]
    remaining = list(range(len(hits)))
    chosen: list[int] = []
    # max similarity of each remaining hit to the chosen set, updated as hits are chosen
    max_sim = [0.0] * len(hits)
    while remaining and len(chosen) < k:
        best = max(remaining, key=lambda i: (lambda_ * relevance[i] - (1 - lambda_) * max_sim[i], -i))
        chosen.append(best)
        remaining.remove(best)
        picked = vectors.get(hits[best].record.id)
        if picked is None:
            continue
        for i in remaining:
            other = vectors.get(hits[i].record.id)
            if other is not None:
                max_sim[i] = max(max_sim[i], _cosine(picked, other))
    return [hits[i] for i in chosen]
