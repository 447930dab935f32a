"""/v1/eval: retrieval quality recorded by ``doclake eval`` and the reindex gate (meta.eval_results).

Tenant routes: a tenant sees its own eval sets and results only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import RuntimeDep, TenantDep
from app.schemas import EvalResultList, EvalResultPublic, EvalSetList, Problem
from pipelines.contracts.evals import EVAL_SET_NAME
from pipelines.errors import EvalSetNotFound
from pipelines.lakehouse.evals import has_eval_set, list_eval_results, list_eval_sets

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["evaluation"])


@router.get(
    "/eval",
    response_model=EvalResultList,
    responses={404: {"model": Problem, "description": "No eval set and no result of that name"}},
    summary="nDCG@10 and Recall@10 per (index, gold version, eval set), newest first",
)
def list_results_route(
    rt: RuntimeDep,
    tenant: TenantDep,
    eval_set: Annotated[str | None, Query(pattern=EVAL_SET_NAME, description="Only results of this eval set.")] = None,
    index_id: Annotated[str | None, Query(max_length=64, description="Only results of this index.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many results.")] = 100,
) -> EvalResultList:
    results = list_eval_results(rt.lake, tenant, eval_set=eval_set, index_id=index_id, limit=limit)
    if eval_set is not None and not results and not has_eval_set(rt.lake, tenant, eval_set):
        raise EvalSetNotFound(f"no eval set {eval_set!r} and no results recorded under that name")
    return EvalResultList(results=[EvalResultPublic.of(r) for r in results])


@router.get("/eval/sets", response_model=EvalSetList, summary="The tenant's eval sets stored in meta.eval_sets")
def list_sets_route(rt: RuntimeDep, tenant: TenantDep) -> EvalSetList:
    return EvalSetList(sets=list_eval_sets(rt.lake, tenant))
