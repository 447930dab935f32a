"""Every call of doclake's HTTP API as an :data:`~app.client_exchange.Operation`: its arguments, the
requests it makes (method, path, query, JSON or multipart body) and the model its answer is read into.

Both clients expose these functions as their methods, so each call's signature, defaults and
docstring are written here once.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from app.client_exchange import Operation, Request, Sleep, request
from app.schemas import (
    BatchUploadAccepted,
    DocumentList,
    DocumentPublic,
    LakeStats,
    PatchAccepted,
    ProductList,
    RagContext,
    RagQuery,
    SearchQuery,
    SearchResponse,
    UploadAccepted,
)
from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.ids import MetadataValue
from pipelines.contracts.search import SearchMode

__all__ = [
    "NamedBytes",
    "Source",
    "delete_document",
    "get_document",
    "list_documents",
    "metrics",
    "products",
    "rag_context",
    "search",
    "stats",
    "upload",
    "upload_and_wait",
    "upload_many",
    "wait",
]

Source = Path | str | bytes
"""What to upload: a path, or the bytes themselves (then pass ``filename``)."""
# A file for upload_many given as (filename, bytes).
NamedBytes = tuple[str, bytes]


def _read_source(source: Source, filename: str | None) -> tuple[str, bytes]:
    # Read once into memory: a retried upload must send the same body again.
    if isinstance(source, bytes):
        return filename or "upload", source
    path = Path(source)
    return filename or path.name, path.read_bytes()


def _form(**fields: object) -> dict[str, str]:
    """Multipart form fields: strings as they are, anything else as JSON; None left out."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items() if v is not None}


def upload(
    source: Source,
    *,
    filename: str | None = None,
    doc_id: str | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    acl: list[str] | None = None,
) -> Operation[UploadAccepted]:
    """Upload a file (or bytes) as a new document, or as a new version of ``doc_id``.

    ``acl``: the principals who may read it; None sends none (a new version keeps the document's acl).
    """
    name, data = _read_source(source, filename)
    form = _form(doc_id=doc_id or None, metadata=metadata, acl=acl)
    files = {"file": (name, data)}
    return request(Request("POST", "/v1/documents", UploadAccepted.model_validate, {"files": files, "data": form}))


def upload_many(
    sources: list[Source | NamedBytes],
    *,
    doc_ids: list[str | None] | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    acl: list[str] | None = None,
    acls: list[list[str] | None] | None = None,
) -> Operation[BatchUploadAccepted]:
    """Upload many files (paths, bytes, or (filename, bytes)) in one request (``/v1/documents/batch``):
    far cheaper per small file.

    ``doc_ids`` gives each file's document (None: derived from its content); ``metadata`` and ``acl`` apply
    to all; ``acls`` gives each file's acl (None: ``acl``, or the document keeps its own).
    """
    files = [("files", s if isinstance(s, tuple) else _read_source(s, None)) for s in sources]
    form = _form(doc_ids=doc_ids, metadata=metadata, acl=acl, acls=acls)
    return request(
        Request("POST", "/v1/documents/batch", BatchUploadAccepted.model_validate, {"files": files, "data": form})
    )


def get_document(doc_id: str) -> Operation[DocumentPublic]:
    """A document's status (and error, counters, metadata)."""
    return request(Request("GET", f"/v1/documents/{doc_id}", DocumentPublic.model_validate))


def list_documents(
    *, status: DocumentStatus | None = None, parent: str | None = None, limit: int = 100, offset: int = 0
) -> Operation[DocumentList]:
    """A page of documents (``limit`` from ``offset``), optionally only those in ``status`` or only the
    attachments of ``parent`` (an e-mail or an archive), and the total."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status.value
    if parent is not None:
        params["parent"] = parent
    return request(Request("GET", "/v1/documents", DocumentList.model_validate, {"params": params}))


def patch_metadata(doc_id: str, metadata: dict[str, MetadataValue]) -> Operation[PatchAccepted]:
    """Set metadata keys of a document; the update stream applies them (search filters see them within seconds)."""
    body = {"json": {"metadata": metadata}}
    return request(Request("PATCH", f"/v1/documents/{doc_id}", PatchAccepted.model_validate, body))


def set_acl(doc_id: str, acl: list[str] | None) -> Operation[PatchAccepted]:
    """Replace who may read a document (None: every caller of the tenant); applied by the update stream
    within seconds, nothing re-embedded."""
    body = {"json": {"acl": acl}}
    return request(Request("PATCH", f"/v1/documents/{doc_id}", PatchAccepted.model_validate, body))


def delete_document(doc_id: str) -> Operation[DocumentPublic]:
    """Delete a document from search and the lake."""
    return request(Request("DELETE", f"/v1/documents/{doc_id}", DocumentPublic.model_validate))


def wait(
    doc_id: str, *, version: int | None = None, timeout: float = 600.0, poll_s: float = 0.2
) -> Operation[DocumentPublic]:
    """Poll until the document (at ``version`` or later) reaches a terminal status."""
    deadline = time.monotonic() + timeout
    while True:
        doc = yield from get_document(doc_id)
        if doc.status.terminal and (version is None or doc.version >= version):
            return doc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{doc_id} still {doc.status.value} after {timeout:.0f}s")
        yield Sleep(poll_s)


def upload_and_wait(
    source: Source,
    *,
    filename: str | None = None,
    doc_id: str | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    acl: list[str] | None = None,
    timeout: float = 600.0,
) -> Operation[DocumentPublic]:
    """Upload, then wait until that version is indexed or failed."""
    accepted = yield from upload(source, filename=filename, doc_id=doc_id, metadata=metadata, acl=acl)
    return (yield from wait(accepted.doc_id, version=accepted.version, timeout=timeout))


def search(
    query: str,
    *,
    top_k: int = 10,
    filter: dict[str, MetadataValue] | None = None,
    as_of: int | datetime | None = None,
    mode: SearchMode | None = None,
    collapse_duplicates: bool = True,
    mmr: float | None = None,
    rerank: bool = False,
    principals: list[str] | None = None,
) -> Operation[SearchResponse]:
    """Top-k chunks; ``mode`` is dense (embeddings), keyword (BM25) or hybrid (both, fused), default the
    service's (hybrid, dense on Pinecone); ``as_of`` (gold version or time) searches gold as it was then;
    ``mmr`` (λ) diversifies, ``rerank`` rescores with the service's cross-encoder; ``principals`` (the end
    user's identities) open the documents whose acl names one of them (without: only documents without an acl)."""
    body = SearchQuery(
        query=query,
        top_k=top_k,
        filter=filter or {},
        as_of=as_of,
        mode=mode,
        collapse_duplicates=collapse_duplicates,
        mmr=mmr,
        rerank=rerank,
        principals=principals or [],
    )
    return request(Request("POST", "/v1/search", SearchResponse.model_validate, {"json": body.model_dump(mode="json")}))


def rag_context(
    question: str,
    *,
    max_tokens: int = 1024,
    filter: dict[str, MetadataValue] | None = None,
    candidates: int = 30,
    principals: list[str] | None = None,
) -> Operation[RagContext]:
    """The best chunks for ``question`` the ``principals`` may read, packed into ``max_tokens``, with numbered
    citations."""
    body = RagQuery(
        question=question,
        max_tokens=max_tokens,
        filter=filter or {},
        candidates=candidates,
        principals=principals or [],
    )
    return request(
        Request("POST", "/v1/rag/context", RagContext.model_validate, {"json": body.model_dump(mode="json")})
    )


def stats() -> Operation[LakeStats]:
    """Documents by status, chunk and vector counts, index size."""
    return request(Request("GET", "/v1/stats", LakeStats.model_validate))


def products(*, evaluate: bool = False) -> Operation[ProductList]:
    """The data products with their latest check results (``evaluate``: run the checks now)."""
    return request(Request("GET", "/v1/products", ProductList.model_validate, {"params": {"evaluate": evaluate}}))


def metrics() -> Operation[str]:
    """The Prometheus text exposition of ``/metrics``."""
    return request(Request("GET", "/metrics", str, text=True))
