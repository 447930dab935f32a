"""silver.documents and bronze.raw_objects: one row per document, guarded by version.

Status transitions are MERGEs that only touch a row whose version is the one the caller works on,
so a step still running for an old version can never overwrite the state of a newer one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipelines.contracts.documents import AttachmentError, DocumentRecord, DocumentStatus, PageError, PageInfo
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, RAW_OBJECTS, TableSpec

__all__ = [
    "count_by_status",
    "get_children",
    "get_document",
    "get_documents",
    "list_documents",
    "record_raw_objects",
    "rows_table",
    "to_record",
    "update_document",
    "update_documents",
]

# Ids per SQL IN list: large enough that a batch is one read, small enough to keep predicates short.
_IN_LIST = 500
_LIST_COLUMNS = [f.name for f in DOCUMENTS.schema if f.name not in ("text", "elements_json")]


def now_utc() -> datetime:
    return datetime.now(UTC)


def rows_table(spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of ``rows`` in the table's schema; absent columns are null."""
    columns = {f.name: [row.get(f.name) for row in rows] for f in spec.schema}
    return pa.Table.from_pydict(columns, schema=spec.schema)


def get_document(lake: Lake, tenant: str, doc_id: str, *, with_text: bool = False) -> dict[str, Any] | None:
    """The silver row of a document, or None."""
    return get_documents(lake, tenant, [doc_id], with_text=with_text).get(doc_id)


def get_documents(lake: Lake, tenant: str, doc_ids: list[str], *, with_text: bool = False) -> dict[str, dict[str, Any]]:
    """The silver rows of these documents of a tenant, by doc_id (absent ids are left out)."""
    columns = None if with_text else _LIST_COLUMNS
    found: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(doc_ids))
    for start in range(0, len(wanted), _IN_LIST):
        ids = ", ".join(sql_quote(d) for d in wanted[start : start + _IN_LIST])
        where = f"tenant = {sql_quote(tenant)} AND doc_id IN ({ids})"
        for row in lake.read(DOCUMENTS, where, columns=columns).to_pylist():
            # The MERGE key makes rows unique; keeping the newest guards against a hand-written duplicate.
            if row["doc_id"] not in found or row["version"] > found[row["doc_id"]]["version"]:
                found[row["doc_id"]] = row
    return found


def get_children(
    lake: Lake, tenant: str, parent_ids: list[str], *, include_deleted: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """The silver rows of the attachments of these documents, by parent doc_id (parents without any are left out).

    Deleted attachments are left out unless ``include_deleted`` (their tombstones keep the link).
    """
    found: dict[str, list[dict[str, Any]]] = {}
    wanted = sorted(set(parent_ids))
    for start in range(0, len(wanted), _IN_LIST):
        ids = ", ".join(sql_quote(d) for d in wanted[start : start + _IN_LIST])
        where = f"tenant = {sql_quote(tenant)} AND parent_doc_id IN ({ids})"
        if not include_deleted:
            where += f" AND status <> {sql_quote(DocumentStatus.deleted.value)}"
        for row in lake.read(DOCUMENTS, where, columns=_LIST_COLUMNS).to_pylist():
            found.setdefault(row["parent_doc_id"], []).append(row)
    for rows in found.values():
        rows.sort(key=lambda r: r["doc_id"])
    return found


def list_documents(
    lake: Lake,
    tenant: str,
    *,
    status: DocumentStatus | None = None,
    parent_doc_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Documents of a tenant, newest first, with the total count before paging.

    ``parent_doc_id`` keeps only the attachments extracted from that document.
    """
    where = f"tenant = {sql_quote(tenant)}"
    if status is not None:
        where += f" AND status = {sql_quote(status.value)}"
    if parent_doc_id is not None:
        where += f" AND parent_doc_id = {sql_quote(parent_doc_id)}"
    table = lake.read(DOCUMENTS, where, columns=_LIST_COLUMNS)
    rows = sorted(table.to_pylist(), key=lambda r: r["updated_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return rows[offset : offset + limit], len(rows)


def count_by_status(lake: Lake, tenant: str) -> dict[str, int]:
    """A tenant's documents per current status, every status listed (one read of the status column)."""
    counts = {s.value: 0 for s in DocumentStatus}
    statuses = lake.read(DOCUMENTS, f"tenant = {sql_quote(tenant)}", columns=["status"]).column("status")
    for value in statuses.to_pylist():
        counts[value] = counts.get(value, 0) + 1
    return counts


def to_record(row: dict[str, Any]) -> DocumentRecord:
    errors = [PageError.model_validate(e) for e in json.loads(row.get("page_errors_json") or "[]")]
    pages = [PageInfo.model_validate(p) for p in json.loads(row.get("pages_json") or "[]")]
    return DocumentRecord(
        tenant=row["tenant"],
        doc_id=row["doc_id"],
        version=row["version"],
        status=DocumentStatus(row["status"]),
        error=row.get("error"),
        filename=row.get("filename"),
        mime=row.get("mime"),
        format=row.get("format"),
        source_uri=row.get("source_uri"),
        content_sha256=row.get("content_sha256"),
        size_bytes=row.get("size_bytes"),
        metadata=json.loads(row.get("metadata_json") or "{}"),
        chunks=row.get("chunks") or 0,
        chunks_embedded=row.get("chunks_embedded") or 0,
        chunks_reused=row.get("chunks_reused") or 0,
        page_count=row.get("page_count"),
        page_errors=errors,
        pages=pages,
        parent_doc_id=row.get("parent_doc_id"),
        attachment_errors=[
            AttachmentError.model_validate(e) for e in json.loads(row.get("attachment_errors_json") or "[]")
        ],
        acl=row.get("acl"),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )


def update_document(lake: Lake, tenant: str, doc_id: str, version: int, **changes: Any) -> bool:
    """Set columns of the row at exactly ``version``. Returns False when that version is not current."""
    return bool(update_documents(lake, tenant, {doc_id: version}, **changes))


def update_documents(lake: Lake, tenant: str, versions: dict[str, int], **changes: Any) -> set[str]:
    """``update_document`` for many documents in one commit: the same ``changes`` on each row at
    exactly its version in ``versions`` (doc_id → version).

    A column given as a dict (doc_id → value) takes a different value per document. Returns the
    doc_ids that were updated; the others are not at that version any more.
    """
    if not versions:
        return set()
    changes["updated_at"] = now_utc()
    rows = [
        {
            "tenant": tenant,
            "doc_id": doc_id,
            "version": version,
            **{name: (value[doc_id] if isinstance(value, dict) else value) for name, value in changes.items()},
        }
        for doc_id, version in versions.items()
    ]
    for row in rows:
        row.setdefault("status", "")
    metrics = lake.merge(
        DOCUMENTS,
        rows_table(DOCUMENTS, rows),
        predicate=DOCUMENTS.merge_on,
        build=lambda m: m.when_matched_update(
            updates={name: f"s.{name}" for name in changes}, predicate="t.version = s.version"
        ),
    )
    if int(metrics.get("num_target_rows_updated", 0)) == len(rows):
        return set(versions)
    # Some rows moved to another version meanwhile: ask which ones are still at the one we updated.
    current = get_documents(lake, tenant, list(versions))
    return {d for d, v in versions.items() if d in current and current[d]["version"] == v}


def record_raw_objects(lake: Lake, rows: list[dict[str, Any]]) -> None:
    """Append received objects to bronze once each (idempotent on tenant, doc_id, version), in one commit."""
    if not rows:
        return
    stamp = now_utc()
    lake.merge(
        RAW_OBJECTS,
        rows_table(RAW_OBJECTS, [{"received_at": stamp, **row} for row in rows]),
        predicate=RAW_OBJECTS.merge_on,
        build=lambda m: m.when_not_matched_insert_all(),
    )
