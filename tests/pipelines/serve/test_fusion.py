"""Rank and score fusion on hand-checked rankings."""

from __future__ import annotations

import pytest

from pipelines.serve.fusion import reciprocal_rank_fusion, score_fusion


def test_rrf_scores_by_hand() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 63)
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]


def test_rrf_agreement_beats_one_first_place() -> None:
    # second in both lists outranks first in only one
    assert reciprocal_rank_fusion([["x", "y"], ["z", "y"]])[0][0] == "y"


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], ["a"]]) == [("a", pytest.approx(1 / 61))]
    assert reciprocal_rank_fusion([["a", "a", "b"]]) == [("a", pytest.approx(1 / 61)), ("b", pytest.approx(1 / 63))]
    assert [i for i, _ in reciprocal_rank_fusion([["p"], ["q"]])] == ["p", "q"]  # tie: first appearance


def test_weighted_rrf_scales_each_list_by_its_weight() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=10, weights=[2.0, 0.5]))
    assert fused["a"] == pytest.approx(2.0 / 11)
    assert fused["b"] == pytest.approx(2.0 / 12 + 0.5 / 11)
    assert fused["c"] == pytest.approx(0.5 / 12)
    # A heavier dense list turns the order the equal-weight fusion would give.
    assert reciprocal_rank_fusion([["x", "y"], ["y", "z"]], weights=[1, 1])[0][0] == "y"
    assert reciprocal_rank_fusion([["x", "y"], ["z", "w"]], weights=[1, 3])[0][0] == "z"


def test_weights_must_match_the_lists_and_not_be_negative() -> None:
    with pytest.raises(ValueError, match="2 weights for 1"):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="negative"):
        score_fusion([[("a", 1.0)]], weights=[-1.0])


def test_score_fusion_min_max_scales_each_list_then_adds_weighted() -> None:
    dense = [("a", 0.9), ("b", 0.7), ("c", 0.5)]  # scaled: a 1, b 0.5, c 0
    bm25 = [("c", 12.0), ("a", 4.0)]  # scaled: c 1, a 0
    fused = dict(score_fusion([dense, bm25], weights=[0.6, 0.4]))
    assert fused == {"a": pytest.approx(0.6), "b": pytest.approx(0.3), "c": pytest.approx(0.4)}
    assert [i for i, _ in score_fusion([dense, bm25], weights=[0.6, 0.4])] == ["a", "c", "b"]
    # BM25's scale does not matter, only each list's spread: multiplying it changes nothing.
    scaled = dict(score_fusion([dense, [(i, s * 100) for i, s in bm25]], weights=[0.6, 0.4]))
    assert scaled == pytest.approx(fused)


def test_score_fusion_edge_cases() -> None:
    assert score_fusion([]) == []
    assert score_fusion([[], [("a", 3.0)]]) == [("a", 1.0)]  # one candidate: its list's best
    assert score_fusion([[("a", 2.0), ("b", 2.0)]]) == [("a", 1.0), ("b", 1.0)]  # all equal, order kept
