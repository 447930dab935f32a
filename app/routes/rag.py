"""/v1/rag/context: a token-budgeted context with numbered citations, for a RAG application's prompt."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import RuntimeDep, TenantDep
from app.schemas import Problem, RagContext, RagQuery
from pipelines.serve.rag import build_context

__all__ = ["router"]

router = APIRouter(prefix="/v1/rag", tags=["rag"])


@router.post(
    "/context",
    response_model=RagContext,
    responses={422: {"model": Problem, "description": "Invalid query"}},
    summary="The best chunks for a question, packed into a token budget with numbered citations",
)
def rag_context_route(body: RagQuery, rt: RuntimeDep, tenant: TenantDep) -> RagContext:
    return build_context(rt, body, tenant=tenant)
