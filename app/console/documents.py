"""Console pages for documents: the paged list with counts per status, one document, uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse

from app.console.render import page
from app.console.session import ConsoleTenant
from app.deps import RuntimeDep
from app.routes.documents import get_route, list_route, upload_batch
from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import count_by_status

__all__ = ["router"]

router = APIRouter(prefix="/console/documents")

PAGE_SIZE = 50
# The htmx event that makes the documents table reload itself (an upload, a document settling).
_CHANGED = "documents-changed"


@router.get("", response_class=HTMLResponse)
def documents_page(
    request: Request,
    rt: RuntimeDep,
    tenant: ConsoleTenant,
    status_: Annotated[DocumentStatus | None, Query(alias="status")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    partial: Annotated[bool, Query(description="Only the table (htmx polling).")] = False,
) -> HTMLResponse:
    listed = list_route(rt, tenant, status_=status_, parent=None, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "documents_table.html" if partial else "documents.html",
        tenant,
        documents=listed.documents,
        total=listed.total,
        counts=count_by_status(rt.lake, tenant),
        status=status_.value if status_ else "",
        offset=offset,
        page_size=PAGE_SIZE,
        moving=any(not d.status.terminal for d in listed.documents),
    )


@router.get("/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, doc_id: str, rt: RuntimeDep, tenant: ConsoleTenant) -> HTMLResponse:
    doc = get_route(doc_id, rt, tenant)
    return page(request, "document.html", tenant, doc=doc)


@router.get("/{doc_id}/status", response_class=HTMLResponse)
def document_status(request: Request, doc_id: str, rt: RuntimeDep, tenant: ConsoleTenant) -> HTMLResponse:
    """One upload's status cell; it keeps polling until the document reaches a terminal status."""
    doc = get_route(doc_id, rt, tenant)
    response = page(request, "status_cell.html", tenant, doc=doc, moving=not doc.status.terminal)
    if doc.status.terminal:
        response.headers["HX-Trigger"] = _CHANGED  # the list below the drop zone shows the settled document
    return response


@router.post("/upload", response_class=HTMLResponse)
def upload(
    request: Request,
    rt: RuntimeDep,
    tenant: ConsoleTenant,
    files: Annotated[list[UploadFile], File(description="One or many files (drag-and-drop or the picker).")],
) -> HTMLResponse:
    # The API's batch route itself: one file or many, the same registration, grouping and enqueueing.
    accepted = upload_batch(request, rt, tenant, files, doc_ids=None, metadata=None)
    response = page(request, "upload_result.html", tenant, batch=accepted)
    response.headers["HX-Trigger"] = _CHANGED
    return response
