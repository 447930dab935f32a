"""The search playground: a query in any mode, with a filter and ``as_of``, or a RAG context."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.console.render import page
from app.console.session import ConsoleTenant
from app.deps import RuntimeDep
from app.routes.rag import rag_context_route
from app.routes.search import search_route
from pipelines.contracts.search import SearchQuery
from pipelines.errors import DocLakeError
from pipelines.serve.rag import RagQuery

__all__ = ["router"]

router = APIRouter(prefix="/console/search")

# The principals field appears once the search contract carries one (access control, issue 19).
HAS_PRINCIPALS = "principals" in SearchQuery.model_fields


@router.get("", response_class=HTMLResponse)
def search_page(request: Request, tenant: ConsoleTenant) -> HTMLResponse:
    return page(request, "search.html", tenant, has_principals=HAS_PRINCIPALS)


@router.post("", response_class=HTMLResponse)
def run_search(
    request: Request,
    rt: RuntimeDep,
    tenant: ConsoleTenant,
    query: Annotated[str, Form()],
    mode: Annotated[str, Form()] = "dense",
    top_k: Annotated[int, Form()] = 10,
    filter_: Annotated[str, Form(alias="filter")] = "",
    as_of: Annotated[str, Form()] = "",
    principals: Annotated[str, Form()] = "",
    rag: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Results (or the RAG context) as an HTML fragment; a bad input is shown, not raised."""
    try:
        wanted: dict[str, Any] = json.loads(filter_) if filter_.strip() else {}
        fields: dict[str, Any] = {"query": query, "mode": mode, "top_k": top_k, "filter": wanted}
        if as_of.strip():
            fields["as_of"] = int(as_of) if as_of.strip().isdigit() else as_of.strip()
        if HAS_PRINCIPALS and principals.strip():
            fields["principals"] = [p.strip() for p in principals.split(",") if p.strip()]
        if rag:
            body = RagQuery.model_validate(
                {"question": query, "filter": wanted, "principals": fields.get("principals", [])}
            )
            return page(request, "rag_result.html", tenant, context=rag_context_route(body, rt, tenant))
        hits = search_route(SearchQuery.model_validate(fields), rt, tenant).results
    except json.JSONDecodeError as e:
        return page(request, "form_error.html", tenant, error=f"filter is not valid JSON: {e.msg}")
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_url=False))
        return page(request, "form_error.html", tenant, error=detail)
    except DocLakeError as e:
        return page(request, "form_error.html", tenant, error=e.describe())
    return page(request, "search_result.html", tenant, hits=hits)
