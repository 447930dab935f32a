"""silver.documents and bronze.raw_objects: one row per document, guarded by version.

Status transitions are MERGEs that only touch a row whose version is the one the caller works on,
so a step still running for an old version can never overwrite the state of a newer one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipelines.contracts import DocumentRecord, DocumentStatus, PageError
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, RAW_OBJECTS, TableSpec

__all__ = [
    "get_document",
    "insert_version",
    "list_documents",
    "record_raw_object",
    "rows_table",
    "to_record",
    "update_document",
]

_LIST_COLUMNS = [f.name for f in DOCUMENTS.schema if f.name not in ("text", "elements_json")]


def now_utc() -> datetime:
    return datetime.now(UTC)


def rows_table(spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of ``rows`` in the table's schema; absent columns are null."""
    columns = {f.name: [row.get(f.name) for row in rows] for f in spec.schema}
    return pa.Table.from_pydict(columns, schema=spec.schema)


def _key_filter(tenant: str, doc_id: str) -> str:
    return f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)}"


def get_document(lake: Lake, tenant: str, doc_id: str, *, with_text: bool = False) -> dict[str, Any] | None:
    """The silver row of a document, or None."""
    columns = None if with_text else _LIST_COLUMNS
    rows = lake.read(DOCUMENTS, _key_filter(tenant, doc_id), columns=columns).to_pylist()
    if not rows:
        return None
    # The MERGE key makes rows unique; max() guards against a hand-written duplicate.
    row: dict[str, Any] = max(rows, key=lambda r: r["version"])
    return row


def list_documents(
    lake: Lake, tenant: str, *, status: DocumentStatus | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Documents of a tenant, newest first, with the total count before paging."""
    where = f"tenant = {sql_quote(tenant)}"
    if status is not None:
        where += f" AND status = {sql_quote(status.value)}"
    table = lake.read(DOCUMENTS, where, columns=_LIST_COLUMNS)
    rows = sorted(table.to_pylist(), key=lambda r: r["updated_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return rows[offset : offset + limit], len(rows)


def to_record(row: dict[str, Any]) -> DocumentRecord:
    errors = [PageError.model_validate(e) for e in json.loads(row.get("page_errors_json") or "[]")]
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
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )


def insert_version(lake: Lake, row: dict[str, Any]) -> None:
    """Make ``row`` the document's current version if it is newer than what silver holds."""
    stamped = {"created_at": now_utc(), "updated_at": now_utc(), **row}
    lake.merge(
        DOCUMENTS,
        rows_table(DOCUMENTS, [stamped]),
        predicate="t.tenant = s.tenant AND t.doc_id = s.doc_id",
        build=lambda m: m.when_matched_update(
            # created_at survives new versions: it is when the document first arrived.
            updates={f.name: f"s.{f.name}" for f in DOCUMENTS.schema if f.name != "created_at"},
            predicate="s.version > t.version",
        ).when_not_matched_insert_all(),
    )


def update_document(lake: Lake, tenant: str, doc_id: str, version: int, **changes: Any) -> bool:
    """Set columns of the row at exactly ``version``. Returns False when that version is not current."""
    changes["updated_at"] = now_utc()
    row = {"tenant": tenant, "doc_id": doc_id, "version": version, "status": changes.get("status", ""), **changes}
    metrics = lake.merge(
        DOCUMENTS,
        rows_table(DOCUMENTS, [row]),
        predicate="t.tenant = s.tenant AND t.doc_id = s.doc_id",
        build=lambda m: m.when_matched_update(
            updates={name: f"s.{name}" for name in changes}, predicate="t.version = s.version"
        ),
    )
    return int(metrics.get("num_target_rows_updated", 0)) > 0


def record_raw_object(lake: Lake, row: dict[str, Any]) -> None:
    """Append the received object to bronze once (idempotent on tenant, doc_id, version)."""
    stamped = {"received_at": now_utc(), **row}
    lake.merge(
        RAW_OBJECTS,
        rows_table(RAW_OBJECTS, [stamped]),
        predicate="t.tenant = s.tenant AND t.doc_id = s.doc_id AND t.version = s.version",
        build=lambda m: m.when_not_matched_insert_all(),
    )
