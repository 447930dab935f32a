"""Purge: the right to be forgotten for some documents of a tenant, or for a whole tenant.

A delete (pipelines/lifecycle.py) takes a document out of search but keeps a tombstone, the raw
bytes and every older table version. A purge removes everything: silver rows (no tombstone), the
gold rows and vectors of every live index, the bronze raw_objects rows and the raw objects, the
change events and quarantined events of those documents. Then it vacuums the touched tables with
retention 0 and drops the older transaction-log entries, because Delta keeps the deleted rows in
older files (and their first characters in the log's column statistics) until then.

The price: time travel to versions before the purge ends for silver, bronze and every gold table
(``as_of`` search, ``doclake restore``), and a reader holding an older snapshot at that moment
loses its files. A purge is resumable: run it again after an interruption, it vacuums even when
the rows are already gone. On a remote lake (no write locks) pause ingestion while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from pipelines.errors import DocLakeError, DocumentNotFound, InvalidInput
from pipelines.lakehouse.documents import get_children
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.maintenance import erase_history, purge_rows
from pipelines.lakehouse.schemas import DOCUMENTS, QUARANTINE, RAW_OBJECTS, UPDATES, TableSpec
from pipelines.objectstore.store import LocalObjectStore, S3ObjectStore
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime
from pipelines.storage.location import missing_files
from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.maintenance import erase_deleted
from pipelines.vectorstore.mirror import remove_documents

__all__ = ["PurgeParams", "PurgeReport", "purge"]

log = logging.getLogger(__name__)

# Documents locked and deleted per Delta commit: one commit per table per batch, not per document.
_BATCH = 200


class PurgeParams(BaseModel):
    tenant: str = Field(description="Tenant whose documents are purged.")
    doc_ids: list[str] | None = Field(
        default=None,
        description="Documents to purge, with their attachments; omitted (null) purges the whole tenant.",
    )
    vacuum: bool = Field(
        default=True,
        description="Vacuum the touched tables with retention 0 and clean their log (ends time travel before the"
        " purge). Without it the rows are gone from the newest version but still in older files.",
    )

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("tenant must not be empty")
        return value

    @field_validator("doc_ids")
    @classmethod
    def _doc_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not d.strip() for d in value)):
            raise ValueError("doc_ids must be omitted (whole tenant) or name at least one non-empty id")
        return value


class PurgeReport(BaseModel):
    tenant: str
    doc_ids: list[str] = Field(description="Documents purged (those found in any table).")
    whole_tenant: bool = Field(description="The whole tenant was purged.")
    rows_removed: dict[str, int] = Field(description="Rows deleted per table.")
    vectors_removed: int = Field(description="Vectors deleted, summed over every live index.")
    objects_removed: int = Field(description="Raw objects deleted from the object store.")
    objects_missing: int = Field(default=0, description="Raw objects already gone or outside the store.")
    files_vacuumed: dict[str, int] = Field(default_factory=dict, description="Data files removed per table.")
    time_travel_ended: list[str] = Field(
        default_factory=list, description="Tables whose versions before the purge can no longer be read."
    )


def purge(rt: Runtime, params: PurgeParams, progress: Progress | None = None) -> PurgeReport:
    """Remove every trace of documents (or of a tenant) from the lake, the vector stores and the object store.

    Purging ids that do not exist is not an error: they are simply not in the report.

    Raises:
        InvalidInput: empty tenant or an empty list of ids (also checked by ``PurgeParams``).
    """
    progress = progress or Progress()
    tenant = params.tenant
    if not tenant.strip() or (params.doc_ids is not None and not params.doc_ids):
        raise InvalidInput("purge needs a tenant and, if given, at least one doc id")
    indexes = rt.indexes()
    tables = [DOCUMENTS, RAW_OBJECTS, UPDATES, QUARANTINE, *(i.gold for i in indexes)]
    stores = [rt.vectors_for(i) for i in indexes]

    progress.stage("finding documents", unit="tables")
    # A document's attachments (e-mail attachments, archive members) go with it, at every level.
    wanted = _with_descendants(rt, tenant, params.doc_ids) if params.doc_ids is not None else None
    found = sorted(_present(rt, tables, stores, tenant, wanted))
    rows: dict[str, int] = {t.name: 0 for t in tables}
    vectors = objects = missing = 0

    progress.stage("purging", total=len(found), unit="documents")
    for batch in _batches(found, _BATCH):
        # Hold every document's lock: an ingestion step that already checked the version must not
        # write gold or vectors back after we deleted them. Sorted order: no deadlock between purges.
        with ExitStack() as stack:
            for doc_id in batch:
                stack.enter_context(rt.doc_lock(tenant, doc_id))
            # Vectors first: that is what search reads, so the documents leave search at once.
            for store in stores:
                vectors += sum(len(store.document_ids(tenant, doc_id)) for doc_id in batch)
                remove_documents([store], tenant, batch)
            uris = _raw_uris(rt, tenant, batch)
            for spec in tables:
                rows[spec.name] += purge_rows(rt.lake, spec, tenant, batch)
            removed, gone = _delete_objects(rt, tenant, batch, uris)
            objects, missing = objects + removed, missing + gone
        progress.advance(len(batch), vectors=vectors, objects=objects)

    if params.doc_ids is None:
        # Rows of the tenant with no document id (quarantined events that never named one).
        for spec in tables:
            rows[spec.name] += purge_rows(rt.lake, spec, tenant, None)
        # And vectors of a document registered while we worked (stop the tenant's uploads first).
        for store in stores:
            late = sorted({s.doc_id for s in store.iter_ids(tenant)})
            vectors += sum(len(store.document_ids(tenant, doc_id)) for doc_id in late)
            remove_documents([store], tenant, late)
        removed, _ = _delete_objects(rt, tenant, None, [])
        objects += removed

    report = PurgeReport(
        tenant=tenant,
        doc_ids=found,
        whole_tenant=params.doc_ids is None,
        rows_removed=rows,
        vectors_removed=vectors,
        objects_removed=objects,
        objects_missing=missing,
    )
    if params.vacuum:
        # Every candidate table, not only those that lost rows now: a purge interrupted after its
        # deletes left the data in old files, and running it again must still erase them.
        progress.stage("vacuuming", total=len(tables) + len(stores), unit="tables")
        for spec in tables:
            report.files_vacuumed[spec.name] = _vacuum_and_clean_log(rt, spec)
            report.time_travel_ended.append(spec.name)
            progress.advance(1)
        for store in stores:
            # LanceDB keeps deleted rows (text included) in its files until they are rewritten.
            erase_deleted(store)
            progress.advance(1)
    progress.finish()
    log.info("purged %d documents of tenant %s: %s", len(found), tenant, report.rows_removed)
    return report


def _with_descendants(rt: Runtime, tenant: str, doc_ids: list[str]) -> list[str]:
    """The ids and, recursively, those of their attachments (deleted ones too: a tombstone keeps its link)."""
    found = set(doc_ids)
    frontier = sorted(found)
    while frontier:
        children = get_children(rt.lake, tenant, frontier, include_deleted=True)
        frontier = sorted({row["doc_id"] for rows in children.values() for row in rows} - found)
        found.update(frontier)
    return sorted(found)


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in(values: list[str]) -> str:
    return "(" + ", ".join(sql_quote(v) for v in values) + ")"


def _present(
    rt: Runtime, tables: list[TableSpec], stores: list[VectorStore], tenant: str, wanted: list[str] | None
) -> set[str]:
    """The ids (of ``wanted``, or of the whole tenant) that appear in any table or vector store."""
    where = f"tenant = {sql_quote(tenant)}"
    if wanted is not None:
        where += f" AND doc_id IN {_in(wanted)}"
    found: set[str] = set()
    for spec in tables:
        found.update(d for d in rt.lake.read(spec, where, columns=["doc_id"]).column("doc_id").to_pylist() if d)
    for store in stores:
        # A vector whose gold row is already gone (an interrupted purge or delete) is still personal data.
        found.update(s.doc_id for s in store.iter_ids(tenant) if wanted is None or s.doc_id in wanted)
    return found


def _raw_uris(rt: Runtime, tenant: str, doc_ids: list[str]) -> list[str]:
    where = f"tenant = {sql_quote(tenant)} AND doc_id IN {_in(doc_ids)}"
    uris = rt.lake.read(RAW_OBJECTS, where, columns=["uri"]).column("uri").to_pylist()
    return sorted({u for u in uris if u})


def _delete_objects(rt: Runtime, tenant: str, doc_ids: list[str] | None, uris: list[str]) -> tuple[int, int]:
    """Delete the raw objects named by bronze rows, plus (local store) any file under the documents' keys.

    The folder sweep catches an object whose bronze row was never written (a crash between the two).
    Returns (removed, missing).
    """
    removed = missing = 0
    for uri in uris:
        try:
            existed = _object_exists(rt, uri)
            rt.objects.delete(uri)
        except DocumentNotFound:
            missing += 1  # outside the store (an S3-event source elsewhere): not ours to delete
            log.warning("purge: raw object %s is outside the object store; left in place", uri)
            continue
        removed, missing = (removed + 1, missing) if existed else (removed, missing + 1)
    if isinstance(rt.objects, LocalObjectStore):
        tenant_dir = rt.objects.root / "raw" / tenant
        folders = [tenant_dir] if doc_ids is None else [tenant_dir / d for d in doc_ids]
        for folder in folders:
            removed += _remove_tree(folder, parent=folder.parent)
        if tenant_dir.is_dir() and not any(tenant_dir.iterdir()):
            tenant_dir.rmdir()
    elif isinstance(rt.objects, S3ObjectStore):
        # Ids are validated (no "/" or ".."), so these prefixes stay inside the tenant's own keys.
        prefixes = [f"raw/{tenant}/"] if doc_ids is None else [f"raw/{tenant}/{d}/" for d in doc_ids]
        removed += sum(rt.objects.delete_prefix(p) for p in prefixes)
    return removed, missing


def _object_exists(rt: Runtime, uri: str) -> bool:
    return not missing_files(rt.settings, [uri])


def _remove_tree(folder: Path, *, parent: Path) -> int:
    # Only a direct child: an id like ".." must never widen the sweep to other tenants' objects.
    folder = folder.resolve()
    if folder.parent != parent.resolve() or not folder.is_dir():
        return 0
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        path.unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    folder.rmdir()
    return len(files)


def _vacuum_and_clean_log(rt: Runtime, spec: TableSpec) -> int:
    """``erase_history`` of one table, its failure worded for a purge (which is resumable)."""
    try:
        return erase_history(rt.lake, spec)
    except DocLakeError:
        raise
    except Exception as e:  # delta-rs raises its own errors on IO trouble
        raise DocLakeError(f"vacuum of {spec.name} after the purge failed (run the purge again): {e}") from e
