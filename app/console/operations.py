"""Operator pages (the admin key): indexes, jobs with progress, data products with their checks;
and the tenant's retrieval quality (meta.eval_results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.console.render import page
from app.console.session import ConsoleAdmin, ConsoleTenant
from app.deps import RuntimeDep
from app.routes.evals import list_results_route
from app.routes.jobs import list_jobs_route
from app.routes.ops import products_route
from pipelines.ops.jobs import JobStatus

__all__ = ["router"]

router = APIRouter(prefix="/console")


@router.get("/operations", response_class=HTMLResponse)
def operations_page(
    request: Request,
    rt: RuntimeDep,
    admin: ConsoleAdmin,
    partial: Annotated[bool, Query(description="Only the jobs table (htmx polling).")] = False,
) -> HTMLResponse:
    jobs = list_jobs_route(request, rt, None, limit=20)
    running = any(j.status == JobStatus.running for j in jobs)
    if partial:
        return page(request, "jobs_table.html", admin, jobs=jobs, running=running)
    return page(
        request,
        "operations.html",
        admin,
        indexes=rt.indexes(),
        jobs=jobs,
        running=running,
        products=products_route(rt, None, evaluate=False),
    )


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, rt: RuntimeDep, tenant: ConsoleTenant) -> HTMLResponse:
    results = list_results_route(rt, tenant, eval_set=None, index_id=None, limit=50).results
    return page(request, "quality.html", tenant, results=results, active=rt.index().index_id)
