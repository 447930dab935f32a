"""Near-duplicate collapse and MMR on hand-built hits."""

from __future__ import annotations

from pipelines.contracts.documents import VectorRecord
from pipelines.serve.diversity import collapse_near_duplicates, maximal_marginal_relevance
from pipelines.vectorstore.base import VectorHit

BASE = (
    "The nightly backup job copies the ledger database to cold storage at two in the morning and keeps"
    " thirty daily snapshots before the oldest one is deleted by the retention policy of the team"
)


def _hit(cid: str, text: str, score: float, doc: str | None = None) -> VectorHit:
    record = VectorRecord(id=cid, tenant="t", doc_id=doc or cid, doc_version=1, vector=[], text=text)
    return VectorHit(record=record, score=score)


def test_exact_and_near_duplicates_collapse_to_the_best_one() -> None:
    hits = [
        _hit("a", BASE, 0.9),
        _hit("b", "Totally different: the VPN certificate expires every ninety days.", 0.8),
        _hit("c", BASE.upper().replace(" ", "  "), 0.7),  # same words, other case and spacing
        _hit("d", BASE + " (updated)", 0.6),  # one word more: shingle Jaccard 32/33
        _hit("e", "The nightly backup job copies the ledger to tape.", 0.5),  # shares words, not a duplicate
    ]
    kept = collapse_near_duplicates(hits)
    assert [h.record.id for h in kept] == ["a", "b", "e"]
    assert [h.score for h in kept] == [0.9, 0.8, 0.5]  # order and scores untouched


def test_collapse_threshold_and_limit() -> None:
    half = " ".join(BASE.split()[:18]) + " but the rest of this paragraph says something else entirely now"
    hits = [_hit("a", BASE, 0.9), _hit("b", half, 0.8)]
    assert [h.record.id for h in collapse_near_duplicates(hits)] == ["a", "b"]
    assert [h.record.id for h in collapse_near_duplicates(hits, threshold=0.3)] == ["a"]
    many = [_hit(str(i), f"paragraph number {i} about topic {i * 7}", 1.0 - i / 100) for i in range(20)]
    assert [h.record.id for h in collapse_near_duplicates(many, limit=5)] == ["0", "1", "2", "3", "4"]
    assert collapse_near_duplicates([_hit("x", "", 1.0), _hit("y", "", 0.5)]) == [
        _hit("x", "", 1.0),
        _hit("y", "", 0.5),
    ]  # no text: nothing to compare, both kept


def test_mmr_trades_relevance_for_diversity() -> None:
    hits = [_hit("a", "", 1.0), _hit("a2", "", 0.95), _hit("b", "", 0.9)]
    vectors = {"a": [1.0, 0.0], "a2": [0.99, 0.14], "b": [0.0, 1.0]}  # a2 is nearly a, b is apart
    # λ = 1: relevance only, the given order.
    assert [h.record.id for h in maximal_marginal_relevance(hits, vectors, lambda_=1.0, k=3)] == ["a", "a2", "b"]
    # λ = 0.5: after a, the near-copy a2 loses to the different b.
    diverse = maximal_marginal_relevance(hits, vectors, lambda_=0.5, k=2)
    assert [h.record.id for h in diverse] == ["a", "b"]
    assert [h.score for h in diverse] == [1.0, 0.9]  # hits keep their own scores
    # A hit without a vector is similar to nothing.
    assert [h.record.id for h in maximal_marginal_relevance(hits, {"a": [1.0, 0.0]}, lambda_=0.5, k=3)] == [
        "a",
        "a2",
        "b",
    ]
    assert maximal_marginal_relevance([], {}, lambda_=0.5, k=3) == []
