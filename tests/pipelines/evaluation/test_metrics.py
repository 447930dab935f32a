"""The scoring of `doclake eval`, the reindex gate and the SciFact bench, on cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from pipelines.evaluation.metrics import best_chunk_ranking, mean_metrics, ndcg_at_k, recall_at_k


def test_ndcg_by_hand() -> None:
    # relevant: a, c. Ranked c (rank 1), x, a (rank 3):
    # DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5; IDCG = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["c", "x", "a"], {"a": 1, "c": 1}, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.9197, abs=1e-4)
    assert ndcg_at_k(["a", "c"], {"a": 1, "c": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a": 1}, 10) == 0.0
    assert ndcg_at_k(["x", "a"], {"a": 1}, 1) == 0.0  # cut at k
    assert ndcg_at_k(["a"], {}, 10) == 0.0


def test_graded_relevance_uses_linear_gain() -> None:
    # a=2, b=1 ranked b, a: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3)
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_and_mean() -> None:
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, 2) == pytest.approx(1 / 3)
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    means = mean_metrics({"q1": ["a"], "q3": ["b"]}, qrels, k=10)  # q2 unanswered scores 0
    assert means == {"ndcg@10": pytest.approx(0.5), "recall@10": pytest.approx(0.5)}


def test_documents_ranked_by_best_chunk() -> None:
    assert best_chunk_ranking(["d2", "d1", "d2", "d3", "d1"]) == ["d2", "d1", "d3"]


def test_chunks_collapse_to_documents_before_scoring() -> None:
    # Chunk hits d2, d2, d1, d3, d1 become documents d2 (rank 1), d1 (rank 2), d3 (rank 3): the
    # second chunk of d2 does not push d1 down, and d1's second chunk does not count twice.
    # Judgements d1=1, d3=2: DCG = 1/log2(3) + 2/log2(4); IDCG = 2/log2(2) + 1/log2(3).
    ranked = best_chunk_ranking(["d2", "d2", "d1", "d3", "d1"])
    dcg = 1 / math.log2(3) + 2 / 2
    idcg = 2 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, {"d1": 1, "d3": 2}, 10) == pytest.approx(dcg / idcg)
    assert dcg / idcg == pytest.approx(0.6199, abs=1e-4)
    assert recall_at_k(ranked, {"d1": 1, "d3": 2}, 10) == 1.0
    assert recall_at_k(ranked, {"d1": 1, "d3": 2}, 2) == 0.5
    # A judged-irrelevant document (score 0) neither gains nor counts as relevant.
    assert ndcg_at_k(["d0", "d1"], {"d0": 0, "d1": 1}, 10) == pytest.approx(1 / math.log2(3))
    assert recall_at_k(["d0"], {"d0": 0, "d1": 1}, 10) == 0.0
