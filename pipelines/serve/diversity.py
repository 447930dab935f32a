"""Result diversity: near-duplicate collapse and maximal marginal relevance (MMR) over ranked hits.

Both keep the order they are given where they do not drop or move a hit, so they compose with any
ranking before them (dense, keyword, fused, reranked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from pipelines.vectorstore.base import VectorHit

__all__ = ["NEAR_DUPLICATE_JACCARD", "collapse_near_duplicates", "maximal_marginal_relevance", "normalized_words"]

# Word 3-shingle Jaccard at or above which two chunks count as one: the same paragraph re-uploaded with
# a changed date or signature line stays above it, two different paragraphs of one template fall below.
NEAR_DUPLICATE_JACCARD = 0.9
_WORD = re.compile(r"\w+")


def normalized_words(text: str) -> list[str]:
    """Lower-cased words of ``text``, punctuation and spacing dropped."""
    return _WORD.findall(text.lower())


def _shingles(words: list[str]) -> frozenset[int]:
    """Hashes of the word 3-shingles (ints compare and intersect much faster than tuples of strings)."""
    if len(words) < 3:
        return frozenset({hash(tuple(words))})
    return frozenset(hash((words[i], words[i + 1], words[i + 2])) for i in range(len(words) - 2))


def collapse_near_duplicates(
    hits: Sequence[VectorHit], *, threshold: float = NEAR_DUPLICATE_JACCARD, limit: int | None = None
) -> list[VectorHit]:
    """``hits`` in order without those nearly identical to a better one (same words, ignoring case and
    punctuation, or word 3-shingle Jaccard ≥ ``threshold``). Hits without text are never collapsed.
    Stops once ``limit`` hits are kept (the caller needs no more).
    """
    kept: list[VectorHit] = []
    seen_exact: set[tuple[str, ...]] = set()
    kept_shingles: list[frozenset[int]] = []
    # Prefix filter (Chaudhuri et al., 2006): sets with Jaccard ≥ t share a member among the first
    # ⌊(1 - t)·|S|⌋ + 1 of each one's members in one fixed order, so only those pairs are compared.
    by_prefix: dict[int, list[int]] = {}
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        words = normalized_words(hit.record.text)
        if not words:
            kept.append(hit)
            continue
        key = tuple(words)
        if key in seen_exact:
            continue
        shingles = _shingles(words)
        prefix = sorted(shingles)[: int((1 - threshold) * len(shingles)) + 1]
        others = {i for token in prefix for i in by_prefix.get(token, ())}
        if any(_jaccard(shingles, kept_shingles[i]) >= threshold for i in others):
            continue
        seen_exact.add(key)
        for token in prefix:
            by_prefix.setdefault(token, []).append(len(kept_shingles))
        kept_shingles.append(shingles)
        kept.append(hit)
    return kept


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    common = len(a & b)
    return common / (len(a) + len(b) - common)


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
    scores = np.array([h.score for h in hits], dtype=np.float64)
    span = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / span if span > 0 else np.ones(len(hits))
    # Unit rows (zero for a hit without a vector): one matrix product gives every pairwise cosine.
    dim = next((len(v) for v in vectors.values()), 0)
    matrix = np.zeros((len(hits), dim), dtype=np.float64)
    for i, h in enumerate(hits):
        v = vectors.get(h.record.id)
        if v is not None:
            row = np.asarray(v, dtype=np.float64)
            norm = float(np.linalg.norm(row))
            matrix[i] = row / norm if norm else row
    similarity = matrix @ matrix.T
    chosen: list[int] = []
    open_ = np.ones(len(hits), dtype=bool)
    max_sim = np.zeros(len(hits))  # of each hit to the chosen set so far
    while open_.any() and len(chosen) < k:
        value = np.where(open_, lambda_ * relevance - (1 - lambda_) * max_sim, -np.inf)
        best = int(np.argmax(value))  # argmax takes the first of equal values: ties keep the order
        chosen.append(best)
        open_[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    return [hits[i] for i in chosen]
