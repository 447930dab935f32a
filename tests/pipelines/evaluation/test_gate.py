"""The reindex gate's decision on figures worked out by hand (the reindex runs are in tests/pipelines/ops)."""

from __future__ import annotations

from pipelines.evaluation.gate import gate_passes


def test_a_drop_up_to_max_drop_passes_and_more_is_refused() -> None:
    assert gate_passes(0.70, 0.70, 0.005)
    assert gate_passes(0.70, 0.695, 0.005)  # exactly the allowed drop (float noise absorbed)
    assert not gate_passes(0.70, 0.6949, 0.005)
    assert gate_passes(0.70, 0.90, 0.005)  # better always passes
    assert gate_passes(0.70, 0.70, 0.0) and not gate_passes(0.70, 0.6999, 0.0)


def test_a_negative_max_drop_demands_an_improvement() -> None:
    assert not gate_passes(0.70, 0.70, -0.01)  # as good is not good enough
    assert not gate_passes(0.70, 0.709, -0.01)
    assert gate_passes(0.70, 0.71, -0.01)
