"""Deleting documents and finding stuck ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from pipelines.contracts.documents import DocumentRecord, DocumentStatus
from pipelines.contracts.rows import SilverRow
from pipelines.errors import DocumentNotFound
from pipelines.lakehouse.documents import get_children, get_document, to_record, update_document
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.lakehouse.writer import delete_chunks, put_versions, version_floors
from pipelines.runtime import Runtime
from pipelines.stream.changes import delete_event
from pipelines.vectorstore.mirror import remove_documents

__all__ = ["StuckDocument", "delete_document", "find_stuck", "touch"]


def delete_document(rt: Runtime, tenant: str, doc_id: str) -> DocumentRecord:
    """Remove a document from search, gold and silver at once; silver keeps a ``deleted`` tombstone.

    The tombstone is a new version, so any step still running for the old version finds itself
    stale and writes nothing. The raw object stays in bronze until a purge (right to be forgotten).
    The document's attachments (children extracted from an e-mail or an archive) are deleted with it,
    depth first and before it, so an interrupted delete leaves no child of a deleted document behind
    (running it again finishes the job). Deleting an attachment alone leaves its parent as it is.

    Raises:
        DocumentNotFound: no such document.
    """
    with rt.doc_lock(tenant, doc_id):
        row = get_document(rt.lake, tenant, doc_id)
        if row is None:
            raise DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
        # Under the parent's lock: its extract step cannot register new children meanwhile.
        for child in get_children(rt.lake, tenant, [doc_id]).get(doc_id, []):
            delete_document(rt, tenant, child["doc_id"])
        if row["status"] == DocumentStatus.deleted:
            return to_record(row)
        # Vector store first: that is what search reads, so the document leaves search immediately.
        # Every live index, not just the active one: a reindex being built must not carry it over.
        indexes = rt.indexes()
        remove_documents([rt.vectors_for(index) for index in indexes], tenant, [doc_id])
        for index in indexes:
            delete_chunks(rt.lake, index.gold, [(tenant, doc_id)])
        # Above any pending change event too, so a queued patch cannot resurrect the document.
        version = version_floors(rt.lake, tenant, {doc_id: row["version"]})[doc_id] + 1
        put_versions(rt.lake, [SilverRow.model_validate(row).tombstone(version)])
        # Stream consumers learn of the delete whoever made it (the API, an S3 ObjectRemoved): for the
        # stream itself it is a no-op, its version is the tombstone's, which silver already holds.
        delete_event(rt, tenant, doc_id, version)
        deleted = get_document(rt.lake, tenant, doc_id)
    assert deleted is not None
    return to_record(deleted)


class StuckDocument(BaseModel):
    tenant: str
    doc_id: str
    version: int
    status: DocumentStatus


def find_stuck(rt: Runtime, *, older_than_s: float) -> list[StuckDocument]:
    """Documents in a non-terminal status whose last update is older than ``older_than_s``."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    pending = ", ".join(sql_quote(s.value) for s in DocumentStatus if not s.terminal)
    where = f"status IN ({pending}) AND updated_at < to_timestamp_micros({int(cutoff.timestamp() * 1e6)})"
    table = rt.lake.read(DOCUMENTS, where, columns=["tenant", "doc_id", "version", "status"])
    return [StuckDocument.model_validate(r) for r in table.to_pylist()]


def touch(rt: Runtime, doc: StuckDocument) -> bool:
    """Refresh updated_at so one sweep re-enqueues a document once, not on every pass."""
    return update_document(rt.lake, doc.tenant, doc.doc_id, doc.version, status=doc.status.value)
