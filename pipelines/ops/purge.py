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
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field, field_validator

from pipelines.errors import DocLakeError, DocumentNotFound, InvalidInput, VectorStoreError
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, QUARANTINE, RAW_OBJECTS, UPDATES, TableSpec
from pipelines.objectstore.store import LocalObjectStore
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime
from pipelines.vectorstore.base import VectorStore

__all__ = ["PurgeParams", "PurgeReport", "purge"]

log = logging.getLogger(__name__)

# Documents locked and deleted per Delta commit: one commit per table per batch, not per document.
_BATCH = 200
# The default of ``delta.logRetentionDuration``, put back after the log has been cleaned.
_LOG_RETENTION = "interval 30 days"


class PurgeParams(BaseModel):
    tenant: str = Field(description="Tenant whose documents are purged.")
    doc_ids: list[str] | None = Field(
        default=None, description="Documents to purge; omitted (null) purges the whole tenant."
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
    wanted = sorted(set(params.doc_ids)) if params.doc_ids is not None else None
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
                for doc_id in batch:
                    vectors += len(store.document_ids(tenant, doc_id))
                    store.delete_document(tenant, doc_id)
            uris = _raw_uris(rt, tenant, batch)
            for spec in tables:
                rows[spec.name] += _delete_rows(rt, spec, tenant, batch)
            removed, gone = _delete_objects(rt, tenant, batch, uris)
            objects, missing = objects + removed, missing + gone
        progress.advance(len(batch), vectors=vectors, objects=objects)

    if params.doc_ids is None:
        # Rows of the tenant with no document id (quarantined events that never named one).
        for spec in tables:
            rows[spec.name] += _delete_rows(rt, spec, tenant, None)
        # And vectors of a document registered while we worked (stop the tenant's uploads first).
        for store in stores:
            for doc_id in sorted({s.doc_id for s in store.iter_ids(tenant)}):
                vectors += len(store.document_ids(tenant, doc_id))
                store.delete_document(tenant, doc_id)
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
            _scrub_vectors(store)
            progress.advance(1)
    progress.finish()
    log.info("purged %d documents of tenant %s: %s", len(found), tenant, report.rows_removed)
    return report


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


def _delete_rows(rt: Runtime, spec: TableSpec, tenant: str, doc_ids: list[str] | None) -> int:
    """Delete the rows of these documents (or every row of the tenant); returns how many.

    A MERGE with the keys as its source, not a DELETE with a predicate: the predicate, ids and all,
    would be written into the commit info of the transaction log and outlive the purge.
    """
    if doc_ids is None:
        keys = pa.table({"tenant": pa.array([tenant], pa.string())})
        predicate = "t.tenant = s.tenant"
    else:
        keys = pa.table(
            {"tenant": pa.array([tenant] * len(doc_ids), pa.string()), "doc_id": pa.array(doc_ids, pa.string())}
        )
        predicate = "t.tenant = s.tenant AND t.doc_id = s.doc_id"

    def run(dt: Any) -> dict[str, Any]:
        metrics: dict[str, Any] = (
            dt.merge(keys, predicate=predicate, source_alias="s", target_alias="t").when_matched_delete().execute()
        )
        return metrics

    return int(rt.lake.maintain(spec, run).get("num_target_rows_deleted", 0))


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
    return removed, missing


def _object_exists(rt: Runtime, uri: str) -> bool:
    if isinstance(rt.objects, LocalObjectStore):
        return Path(uri.removeprefix("file://")).exists()
    return True  # S3 deletes are idempotent; counting a request as a removal is the best we know


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
    """Remove every file no longer in the newest version, then the log entries before a new checkpoint.

    Files: a full vacuum (every unreferenced file, not only the remembered tombstones, whose memory
    ends after the delete retention) is safe on a local lake because we hold the table's write lock,
    so no writer has an uncommitted file; on a remote lake only tombstoned files are removed.
    Log: the add actions of the old files carry min/max statistics (ids, the first characters of
    the text); a checkpoint plus a log cleanup with a zero retention drops them, then the default
    retention is put back.
    """
    root = rt.lake.root
    full = "://" not in root or root.startswith("file://")

    def run(dt: Any) -> dict[str, Any]:
        files = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=full)
        dt.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
        try:
            dt.create_checkpoint()
            dt.cleanup_metadata()
        finally:
            dt.alter.set_table_properties({"delta.logRetentionDuration": _LOG_RETENTION})
        return {"files": len(files)}

    try:
        return int(rt.lake.maintain(spec, run)["files"])
    except DocLakeError:
        raise
    except Exception as e:  # delta-rs raises its own errors on IO trouble
        raise DocLakeError(f"vacuum of {spec.name} after the purge failed (run the purge again): {e}") from e


def _scrub_vectors(store: VectorStore) -> None:
    """Rewrite the vector store's files without the deleted rows and drop its older versions.

    LanceDB deletes by marking rows: the text stays in the data file, and its compaction only
    rewrites fragments with more than 10 % deleted rows (lancedb exposes no threshold without
    pylance). A no-op update of every row moves them all into new fragments, which leaves the old
    ones fully deleted, so compaction drops them and the cleanup removes their files. It costs a
    rewrite of the store, which a purge can afford. Service stores (Pinecone) delete for real.

    Raises:
        VectorStoreError: the rewrite failed (e.g. a concurrent write won); run the purge again.
    """
    import warnings

    from pipelines.vectorstore.lance import LanceVectorStore

    if not isinstance(store, LanceVectorStore):
        return
    import lancedb

    db = lancedb.connect(store.path)
    if store.table_name not in db.list_tables().tables:
        return
    table = db.open_table(store.table_name)
    try:
        table.update(where="true", values_sql={"id": "id"})
        with warnings.catch_warnings():
            # "cleanup_older_than=0 removes every version": exactly what a purge is for.
            warnings.simplefilter("ignore", UserWarning)
            table.optimize(cleanup_older_than=timedelta(0))
    except Exception as e:  # lance raises plain RuntimeError/OSError on commit or IO trouble
        raise VectorStoreError(f"rewriting {store.table_name} after the purge failed: {e}") from e
