"""/v1/jobs: the operator commands (reindex, reconcile, optimize, vacuum, restore, purge) as jobs.

A POST starts the job in this API process and answers at once with its record; GET polls it. The
CLI runs the same functions in the foreground (``doclake reindex`` …). Operator routes: with API
keys configured they need the admin key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.deps import AdminDep, RuntimeDep
from app.schemas import Problem
from pipelines.ops.jobs import JobRecord, JobRequest, JobStore, start_job
from pipelines.runtime import Runtime

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["operations"])


def _store(request: Request, rt: Runtime) -> JobStore:
    store: JobStore | None = getattr(request.app.state, "jobs", None)
    if store is None:
        store = request.app.state.jobs = JobStore(rt.records)
    return store


@router.post(
    "/jobs",
    response_model=JobRecord,
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"model": Problem, "description": "Unknown kind or invalid params"}},
    summary="Start an operator job (reindex, reconcile, optimize, vacuum, restore, purge)",
)
def start_job_route(body: JobRequest, request: Request, rt: RuntimeDep, _: AdminDep) -> JobRecord:
    return start_job(rt, _store(request, rt), body)


@router.get("/jobs", response_model=list[JobRecord], summary="Recent jobs, newest first")
def list_jobs_route(
    request: Request,
    rt: RuntimeDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500, description="How many jobs.")] = 50,
) -> list[JobRecord]:
    return _store(request, rt).list(limit)


@router.get(
    "/jobs/{job_id}",
    response_model=JobRecord,
    responses={404: {"model": Problem, "description": "No such job"}},
    summary="One job: status, progress (done/total, ETA) and its report when finished",
)
def get_job_route(job_id: str, request: Request, rt: RuntimeDep, _: AdminDep) -> JobRecord:
    return _store(request, rt).get(job_id)
