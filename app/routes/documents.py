"""/v1/documents: upload, list, get, patch metadata, delete."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status

from app.deps import RuntimeDep, TenantDep
from app.schemas import (
    BatchItem,
    BatchUploadAccepted,
    DocumentList,
    DocumentPublic,
    MetadataPatch,
    PatchAccepted,
    Problem,
    UploadAccepted,
)
from pipelines.contracts.acl import KEEP, AclArg, InvalidAcl, parse_acl_text, validate_acl
from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import DocumentNotFound, InvalidInput
from pipelines.ingest.lifecycle import delete_document
from pipelines.ingest.register import RegisterItem, prepare_item, register_objects
from pipelines.lakehouse.documents import get_document, list_documents, to_record
from pipelines.stream.changes import patch_metadata

__all__ = ["router"]

log = logging.getLogger("doclake.api")

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such document"},
    413: {"model": Problem, "description": "Upload too large"},
    422: {"model": Problem, "description": "Invalid input"},
}


_ACL_FORM = (
    'A JSON array of principals who may read the document, e.g. ["group:sre", "user:ana"] (at most 100, each at'
    ' most 256 characters; "*" is reserved). Absent: a new document is readable by every caller of the tenant,'
    " and a new version keeps the document's current acl; null: readable by every caller of the tenant."
)


def _read_limited(upload: UploadFile, limit_bytes: int) -> bytes:
    data = upload.file.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds {limit_bytes} bytes")
    return data


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadAccepted,
    responses=_PROBLEMS,
    summary="Upload a document (or a new version of one)",
)
def upload_document(
    request: Request,
    rt: RuntimeDep,
    tenant: TenantDep,
    file: Annotated[UploadFile, File(description="The document's bytes; its type is detected from them.")],
    doc_id: Annotated[
        str | None, Form(description="Upload a new version of this document. Default: derived from the content.")
    ] = None,
    metadata: Annotated[
        str | None, Form(description='A JSON object of strings, numbers and booleans, e.g. {"team": "ops"}.')
    ] = None,
    acl: Annotated[str | None, Form(description=_ACL_FORM)] = None,
) -> UploadAccepted:
    parsed_meta = None
    if metadata:
        try:
            parsed_meta = json.loads(metadata)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"metadata is not valid JSON: {e.msg}", doc_id=doc_id) from e
    acl_given = parse_acl_text(acl, doc_id=doc_id)
    data = _read_limited(file, rt.settings.max_upload_mb * 1024 * 1024)
    item = RegisterItem(
        data=data,
        filename=_clean_filename(file.filename),
        doc_id=doc_id or None,
        metadata=parsed_meta,
        acl=acl_given,
    )
    result = register_objects(rt, [item], tenant=tenant)[0]
    if result.needs_processing:
        try:
            request.app.state.enqueue(tenant, result.doc_id, result.version)
        except Exception:
            # The version is recorded as queued in Delta; the sweeper re-enqueues it once the broker is back.
            log.exception("enqueue failed for %s v%d; the sweeper will retry", result.doc_id, result.version)
    return UploadAccepted(**result.model_dump())


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchUploadAccepted,
    responses=_PROBLEMS,
    summary="Upload many documents at once",
    description=(
        "Every file becomes a document (or a new version of one) as with a single upload, but the batch "
        "is recorded in one commit and processed a group at a time (DOCLAKE_INGEST_BATCH_SIZE documents "
        "per task and per Delta commit), which makes many small files far cheaper. A file that is refused "
        "(a bad doc_id) is reported in its item; the other files are still accepted. The request as a "
        "whole is limited to DOCLAKE_MAX_UPLOAD_MB and DOCLAKE_MAX_BATCH_FILES files."
    ),
)
def upload_batch(
    request: Request,
    rt: RuntimeDep,
    tenant: TenantDep,
    files: Annotated[list[UploadFile], File(description="The documents' bytes, one part per file.")],
    doc_ids: Annotated[
        str | None,
        Form(description="A JSON array with one doc_id (or null: derived from the content) per file, in order."),
    ] = None,
    metadata: Annotated[
        str | None, Form(description="A JSON object of strings, numbers and booleans attached to every file.")
    ] = None,
    acl: Annotated[str | None, Form(description="The acl of every file: " + _ACL_FORM)] = None,
    acls: Annotated[
        str | None,
        Form(
            description=(
                "A JSON array with one acl per file, in order: an array of principals, or null (that file takes"
                " `acl`, or keeps its current acl). Any malformed acl refuses the whole request (422)."
            )
        ),
    ] = None,
) -> BatchUploadAccepted:
    limit = rt.settings.max_batch_files
    if len(files) > limit:
        raise InvalidInput(f"a batch carries at most {limit} files (DOCLAKE_MAX_BATCH_FILES), got {len(files)}")
    ids = _parse_json_form(doc_ids, "doc_ids", list) if doc_ids else [None] * len(files)
    if len(ids) != len(files) or not all(i is None or isinstance(i, str) for i in ids):
        raise InvalidInput(f"doc_ids must be a JSON array of {len(files)} strings or nulls, one per file")
    parsed_meta = _parse_json_form(metadata, "metadata", dict) if metadata else None
    shared_acl = parse_acl_text(acl)
    per_file = _parse_json_form(acls, "acls", list) if acls else [None] * len(files)
    if len(per_file) != len(files):
        raise InvalidAcl(f"acls must be a JSON array of {len(files)} acls or nulls, one per file")
    file_acls: list[AclArg] = [
        validate_acl(a, doc_id=i) if a is not None else shared_acl for a, i in zip(per_file, ids, strict=True)
    ]
    items: list[BatchItem] = []
    valid: list[tuple[int, RegisterItem]] = []
    for index, (upload, doc_id, acl_given) in enumerate(zip(files, ids, file_acls, strict=True)):
        filename = _clean_filename(upload.filename)
        try:
            item = RegisterItem(
                data=_read_limited(upload, rt.settings.max_upload_mb * 1024 * 1024),
                filename=filename,
                doc_id=doc_id or None,
                metadata=parsed_meta,
                acl=acl_given,
            )
            valid.append((index, prepare_item(item)))
        except InvalidInput as e:
            items.append(BatchItem(index=index, filename=filename, doc_id=doc_id, error=e.describe()))
    results = register_objects(rt, [item for _, item in valid], tenant=tenant)
    queued: dict[str, tuple[int, int]] = {}
    for (index, item), result in zip(valid, results, strict=True):
        items.append(BatchItem(index=index, filename=item.filename, **result.model_dump()))
        if result.needs_processing:
            # A document twice in the batch: its newest version.
            queued[result.doc_id] = (result.version, len(item.data))
    _enqueue_groups(request, tenant, queued, rt.settings.ingest_batch_size)
    items.sort(key=lambda i: i.index)
    return BatchUploadAccepted(
        accepted=sum(1 for i in items if i.error is None and not i.duplicate),
        duplicates=sum(1 for i in items if i.duplicate),
        rejected=sum(1 for i in items if i.error is not None),
        items=items,
    )


def _parse_json_form(value: str, name: str, kind: type) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{name} is not valid JSON: {e.msg}") from e
    if not isinstance(parsed, kind):
        raise InvalidInput(f"{name} must be a JSON {'array' if kind is list else 'object'}")
    return parsed


# Raw bytes per group: small files share a task, a big one gets its own, so that no task embeds for
# minutes (a Redis broker redelivers a task that outlives its visibility timeout).
_GROUP_BYTES = 2 * 1024 * 1024


def _enqueue_groups(request: Request, tenant: str, queued: dict[str, tuple[int, int]], size: int) -> None:
    """Hand (doc_id → (version, bytes)) to the workers in groups of at most ``size`` documents."""
    groups: list[dict[str, int]] = []
    group_bytes = 0
    for doc_id, (version, n) in queued.items():
        if not groups or len(groups[-1]) >= size or group_bytes + n > _GROUP_BYTES:
            groups.append({})
            group_bytes = 0
        groups[-1][doc_id] = version
        group_bytes += n
    for group in groups:
        try:
            request.app.state.enqueue_batch(tenant, group)
        except Exception:
            # The versions are recorded as queued in Delta; the sweeper re-enqueues them once the broker is back.
            log.exception("enqueue failed for a batch of %d documents; the sweeper will retry", len(group))


def _clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    # Only the base name is kept (for display); storage keys never use it.
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(ch for ch in base if ch.isprintable())[:255] or None


@router.get("", response_model=DocumentList, summary="List documents, optionally by status or parent")
def list_route(
    rt: RuntimeDep,
    tenant: TenantDep,
    status_: Annotated[DocumentStatus | None, Query(alias="status")] = None,
    parent: Annotated[
        str | None, Query(description="Only the attachments extracted from this document (an e-mail, an archive).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    rows, total = list_documents(rt.lake, tenant, status=status_, parent_doc_id=parent, limit=limit, offset=offset)
    return DocumentList(documents=[DocumentPublic.of(to_record(r)) for r in rows], total=total)


@router.get("/{doc_id}", response_model=DocumentPublic, responses=_PROBLEMS, summary="A document's status")
def get_route(doc_id: str, rt: RuntimeDep, tenant: TenantDep) -> DocumentPublic:
    row = get_document(rt.lake, tenant, doc_id)
    if row is None:
        raise DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
    return DocumentPublic.of(to_record(row))


@router.delete(
    "/{doc_id}",
    response_model=DocumentPublic,
    responses=_PROBLEMS,
    summary="Delete a document from search and the lake",
    description="An e-mail's or an archive's attachments are deleted with it; deleting an attachment alone is allowed.",
)
def delete_route(doc_id: str, rt: RuntimeDep, tenant: TenantDep) -> DocumentPublic:
    return DocumentPublic.of(delete_document(rt, tenant, doc_id))


@router.patch(
    "/{doc_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PatchAccepted,
    responses=_PROBLEMS,
    summary="Change a document's metadata and/or acl (applied by the update stream)",
    description=(
        'Body: {"metadata": {...}} (keys to set), {"acl": [...]} (who may read it; null: the whole tenant), or both.'
        " Metadata only: nothing is re-embedded; search sees the change within seconds."
    ),
)
def patch_route(doc_id: str, body: MetadataPatch, rt: RuntimeDep, tenant: TenantDep) -> PatchAccepted:
    metadata = dict(body.metadata) if body.metadata is not None else None
    event = patch_metadata(rt, tenant, doc_id, metadata, acl=body.acl if body.sets_acl else KEEP)
    return PatchAccepted(
        doc_id=doc_id, version=event.version, event_id=event.event_id, metadata=event.metadata or {}, acl=event.acl
    )
