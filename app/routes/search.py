"""/v1/search: semantic search over indexed chunks."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import RuntimeDep, TenantDep
from app.schemas import Problem, SearchResponse
from pipelines.contracts.search import SearchQuery
from pipelines.serve.search import resolve_mode, search

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search",
    response_model=SearchResponse,
    responses={422: {"model": Problem, "description": "Invalid query"}},
    summary="Top-k chunks for a query, with an exact-match metadata filter",
)
def search_route(body: SearchQuery, rt: RuntimeDep, tenant: TenantDep) -> SearchResponse:
    mode = resolve_mode(rt, body)
    return SearchResponse(results=search(rt, body.model_copy(update={"mode": mode}), tenant=tenant), mode=mode)
