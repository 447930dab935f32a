"""The quality gate of a reindex: the new index may switch only if it ranks about as well as the active one.

Both indexes answer the same eval set, in the same mode, just before the switch (after the new one
has caught up); the switch is refused when the new nDCG@10 is more than ``max_drop`` below the
active one's. Both results are recorded in ``meta.eval_results`` whatever the decision.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from pipelines.contracts.evals import EvalSet
from pipelines.contracts.search import SearchMode
from pipelines.evaluation.run import evaluate_index
from pipelines.lakehouse.evals import put_eval_result
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime

__all__ = ["GateReport", "gate_passes", "quality_gate"]

# Two equal rankings give bit-identical figures; this only absorbs float noise in ``active - max_drop``.
_EPSILON = 1e-9


class GateReport(BaseModel):
    eval_set: str = Field(description="The eval set both indexes answered.")
    tenant: str = Field(description="Tenant of the eval set (its documents were searched).")
    mode: SearchMode = Field(description="Search mode of the queries.")
    queries: int = Field(description="Queries evaluated.")
    max_drop: float = Field(description="Largest nDCG@10 drop allowed (negative: the new index must be better).")
    active_index_id: str = Field(description="The index active when the gate ran.")
    active_ndcg_at_10: float
    active_recall_at_10: float
    new_ndcg_at_10: float
    new_recall_at_10: float
    passed: bool = Field(description="new nDCG@10 >= active nDCG@10 - max_drop.")
    forced: bool = Field(default=False, description="Switched although the gate refused (force).")


def gate_passes(active_ndcg: float, new_ndcg: float, max_drop: float) -> bool:
    """Whether a new index with ``new_ndcg`` may replace one with ``active_ndcg``."""
    return new_ndcg + _EPSILON >= active_ndcg - max_drop


def quality_gate(
    rt: Runtime,
    golden: EvalSet,
    *,
    active: IndexSpec,
    candidate: IndexSpec,
    tenant: str,
    mode: SearchMode = "dense",
    max_drop: float = 0.005,
    progress: Progress | None = None,
) -> GateReport:
    """Evaluate ``active`` and ``candidate`` on ``golden``, record both results, and decide.

    ``mode`` stays dense by default although search defaults to hybrid: a reindex changes the vectors,
    and the BM25 half of hybrid (the same text in both indexes) would hide a worse model.
    """
    before = evaluate_index(rt, golden, active, tenant=tenant, mode=mode, progress=progress)
    after = evaluate_index(rt, golden, candidate, tenant=tenant, mode=mode, progress=progress)
    put_eval_result(rt.lake, before)
    put_eval_result(rt.lake, after)
    return GateReport(
        eval_set=golden.name,
        tenant=tenant,
        mode=mode,
        queries=len(golden.queries),
        max_drop=max_drop,
        active_index_id=active.index_id,
        active_ndcg_at_10=before.ndcg_at_10,
        active_recall_at_10=before.recall_at_10,
        new_ndcg_at_10=after.ndcg_at_10,
        new_recall_at_10=after.recall_at_10,
        passed=gate_passes(before.ndcg_at_10, after.ndcg_at_10, max_drop),
    )
