"""The register step: store raw bytes, record them in bronze, queue a new version in silver."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelines.contracts.acl import KEEP, validate_acl
from pipelines.contracts.documents import (
    DocumentStatus,
    RegisterResult,
)
from pipelines.contracts.ids import DEFAULT_TENANT, sha256_hex
from pipelines.contracts.rows import SilverRow
from pipelines.contracts.validate import validate_doc_id, validate_metadata
from pipelines.ingest.guards import doc_locks
from pipelines.lakehouse.documents import (
    get_documents,
    record_raw_objects,
)
from pipelines.lakehouse.writer import put_versions, version_floors
from pipelines.objectstore.store import raw_key
from pipelines.runtime import Runtime

__all__ = ["RegisterItem", "prepare_item", "register_objects"]


class RegisterItem(BaseModel):
    """One object to register: its bytes and what the caller said about it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: bytes
    filename: str | None = None
    doc_id: str | None = None
    # Checked by ``prepare_item`` (validate_metadata), which raises the documented InvalidInput.
    metadata: Any = None
    stored_uri: str | None = None
    # Set by the extract step for an attachment: the container document it came from (same tenant).
    parent_doc_id: str | None = None
    # Who may read the new version (null: the tenant). Not given: the document keeps its current acl, so a
    # new version uploaded without one never makes a private document public. Checked by ``prepare_item``.
    acl: Any = KEEP

    @property
    def sets_acl(self) -> bool:
        return self.acl is not KEEP


def prepare_item(item: RegisterItem) -> RegisterItem:
    """Validate an item and give it its doc_id (derived from the content hash when not given).

    Raises:
        InvalidInput: bad doc_id or metadata.
        InvalidAcl: a bad acl.
    """
    doc_id = validate_doc_id(item.doc_id) if item.doc_id else f"d{sha256_hex(item.data)[:24]}"
    metadata = validate_metadata(item.metadata, doc_id=doc_id) if item.metadata is not None else None
    acl = validate_acl(item.acl, doc_id=doc_id) if item.sets_acl else KEEP
    return item.model_copy(update={"doc_id": doc_id, "metadata": metadata, "acl": acl})


def register_objects(
    rt: Runtime, items: list[RegisterItem], *, tenant: str = DEFAULT_TENANT, source: str = "api"
) -> list[RegisterResult]:
    """Store each object's raw bytes, record them in bronze, and queue a new version in silver.

    Without a doc_id the id is derived from the content hash, so uploading the same file twice is
    one document. Identical bytes (and metadata, and acl when given) for the current version are a
    no-op (``duplicate``).
    ``stored_uri`` names bytes already in the object store (S3 events): they are not stored again.
    One read and two commits per 256 objects.

    Items are taken in order: an item identical to an earlier one of the same document is a
    duplicate of it, a different one becomes the next version.

    Raises:
        InvalidInput: a bad tenant, doc_id or metadata (before anything is written; validate each
            item with ``prepare_item`` first to reject only the bad ones).
    """
    validate_doc_id(tenant, what="tenant")
    items = [prepare_item(i) for i in items]
    results: list[RegisterResult] = []
    # Slices bound how many document locks (open files) one call holds at once.
    for start in range(0, len(items), _REGISTER_SLICE):
        results.extend(_register_slice(rt, items[start : start + _REGISTER_SLICE], tenant=tenant, source=source))
    return results


_REGISTER_SLICE = 256


def _register_slice(rt: Runtime, items: list[RegisterItem], *, tenant: str, source: str) -> list[RegisterResult]:
    doc_ids = [i.doc_id for i in items if i.doc_id]
    results: list[RegisterResult] = []
    raw_rows: list[dict[str, Any]] = []
    silver_rows: dict[str, SilverRow] = {}
    with doc_locks(rt, tenant, doc_ids):
        current: dict[str, dict[str, Any]] = get_documents(rt.lake, tenant, doc_ids)
        floors = version_floors(rt.lake, tenant, {d: current[d]["version"] if d in current else 0 for d in doc_ids})
        for item in items:
            assert item.doc_id is not None
            doc_id, data, metadata = item.doc_id, item.data, item.metadata
            sha = sha256_hex(data)
            cur = current.get(doc_id)
            # A failed version is not a duplicate: uploading the same bytes again is how a user retries it.
            if cur is not None and cur["status"] not in (DocumentStatus.deleted, DocumentStatus.failed):
                same_meta = metadata is None or json.loads(cur["metadata_json"] or "{}") == metadata
                same_acl = not item.sets_acl or cur.get("acl") == item.acl
                if cur["content_sha256"] == sha and same_meta and same_acl:
                    results.append(
                        RegisterResult(doc_id=doc_id, version=cur["version"], status=cur["status"], duplicate=True)
                    )
                    continue
            alive = cur is not None and cur["status"] != DocumentStatus.deleted
            if metadata is None:
                metadata = json.loads(cur["metadata_json"] or "{}") if alive and cur else {}
            acl = item.acl if item.sets_acl else (cur.get("acl") if alive and cur else None)
            # Above pending change events too (bronze.document_updates): the stream must not undo this upload.
            version = floors[doc_id] = floors[doc_id] + 1
            # An object that arrived in the store by itself (an S3 event) is referenced, not copied.
            uri = item.stored_uri or rt.objects.put(raw_key(tenant, doc_id, version, sha), data)
            meta_json = json.dumps(metadata, sort_keys=True)
            raw_rows.append(
                {
                    "tenant": tenant,
                    "doc_id": doc_id,
                    "version": version,
                    "uri": uri,
                    "sha256": sha,
                    "size_bytes": len(data),
                    "filename": item.filename,
                    "source": source,
                    "metadata_json": meta_json,
                }
            )
            row = SilverRow(
                tenant=tenant,
                doc_id=doc_id,
                version=version,
                status=DocumentStatus.queued,
                filename=item.filename,
                source_uri=uri,
                content_sha256=sha,
                size_bytes=len(data),
                metadata_json=meta_json,
                parent_doc_id=item.parent_doc_id,
                acl=acl,
            )
            # The newest version of a document in the batch is the one silver keeps.
            silver_rows[doc_id] = row
            current[doc_id] = row.row()
            results.append(RegisterResult(doc_id=doc_id, version=version, status=DocumentStatus.queued))
        record_raw_objects(rt.lake, raw_rows)
        put_versions(rt.lake, list(silver_rows.values()))
    return results
