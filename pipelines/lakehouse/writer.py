"""The lakehouse writer: the one place that decides how document state is committed.

Every path that changes a document (the Celery steps, the stream on either engine, reindex,
delete) writes through these functions, so the rules live once:

- a new version is above both silver's version and any change event still waiting for the
  stream (``version_floors``), so a pending patch can never resurrect a deleted document;
- silver keeps the newest version (MERGE guarded by ``s.version > t.version``), and a newer version
  replaces every column but ``created_at``;
- a document's gold rows are replaced in one MERGE: upsert by chunk key, and delete the document's
  rows the new set no longer has;
- MERGE conditions come from each table's key (``TableSpec.merge_on``).

``pipelines.lakehouse.spark_writer`` commits the same MERGEs through Spark for large batches, built
from the same predicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipelines.contracts.rows import GoldRow, SilverRow
from pipelines.lakehouse.documents import now_utc, rows_table
from pipelines.lakehouse.lake import Lake, Txn, sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, QUARANTINE, UPDATES, TableSpec
from pipelines.lakehouse.updates import newest_event_versions

__all__ = [
    "DocKey",
    "append_events",
    "delete_chunks",
    "docs_predicate",
    "follow_index",
    "put_versions",
    "quarantine",
    "replace_chunks",
    "version_floors",
    "version_updates",
]

# A document's identity in every table: (tenant, doc_id).
DocKey = tuple[str, str]


def docs_predicate(docs: Iterable[DocKey], *, alias: str = "t.") -> str:
    """A predicate selecting every row of these documents (``false`` when there are none)."""
    by_tenant: dict[str, set[str]] = {}
    for tenant, doc_id in docs:
        by_tenant.setdefault(tenant, set()).add(doc_id)
    if not by_tenant:
        return "false"
    return " OR ".join(
        f"({alias}tenant = {sql_quote(tenant)} AND {alias}doc_id IN ({', '.join(sql_quote(d) for d in sorted(ids))}))"
        for tenant, ids in sorted(by_tenant.items())
    )


def version_updates() -> dict[str, str]:
    """What a newer silver version sets: every column but ``created_at`` (when the document first arrived)."""
    return {name: f"s.{name}" for name in DOCUMENTS.schema.names if name != "created_at"}


def version_floors(lake: Lake, tenant: str, silver_versions: Mapping[str, int]) -> dict[str, int]:
    """doc_id → the highest version claimed so far (silver's, or a change event's that waits for the stream).

    A new version of a document (an upload, a delete, a patch) is its floor + 1.
    """
    events = newest_event_versions(lake, tenant, list(silver_versions))
    return {d: max(v, events.get(d, 0)) for d, v in silver_versions.items()}


def _silver(row: SilverRow | Mapping[str, Any]) -> dict[str, Any]:
    return row.row() if isinstance(row, SilverRow) else dict(row)


def _gold(row: GoldRow | Mapping[str, Any]) -> dict[str, Any]:
    return row.row() if isinstance(row, GoldRow) else dict(row)


def put_versions(lake: Lake, rows: Sequence[SilverRow | Mapping[str, Any]], *, txn: Txn | None = None) -> None:
    """Make each row its document's current version where it is newer than what silver holds (one commit)."""
    if not rows:
        return
    stamp = now_utc()
    source = [{**_silver(r)} for r in rows]
    for r in source:
        r["created_at"] = r.get("created_at") or stamp
        r["updated_at"] = r.get("updated_at") or stamp
    lake.merge(
        DOCUMENTS,
        rows_table(DOCUMENTS, source),
        predicate=DOCUMENTS.merge_on,
        build=lambda m: m.when_matched_update(
            updates=version_updates(), predicate="s.version > t.version"
        ).when_not_matched_insert_all(),
        txn=txn,
    )


def replace_chunks(
    lake: Lake,
    gold: TableSpec,
    docs: Iterable[DocKey],
    rows: Sequence[GoldRow | Mapping[str, Any]],
    *,
    txn: Txn | None = None,
) -> dict[str, Any]:
    """Make ``gold`` hold exactly ``rows`` for the documents ``docs``, in one commit.

    A document of ``docs`` without rows loses all of its chunks. Returns delta-rs's merge metrics.
    """
    stamp = now_utc()
    source = [{**_gold(r)} for r in rows]
    for r in source:
        r["updated_at"] = r.get("updated_at") or stamp
    stale = docs_predicate(docs)
    return lake.merge(
        gold,
        rows_table(gold, source),
        predicate=gold.merge_on,
        build=lambda m: (
            m.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(predicate=stale)
        ),
        txn=txn,
    )


def delete_chunks(lake: Lake, gold: TableSpec, docs: Iterable[DocKey]) -> int:
    """Remove every gold row of these documents; returns how many."""
    predicate = docs_predicate(docs, alias="")
    if predicate == "false":
        return 0
    metrics = lake.delete(gold, predicate)
    return int(metrics.get("num_deleted_rows", 0))


def append_events(lake: Lake, rows: Sequence[Mapping[str, Any]], *, txn: Txn | None = None) -> None:
    """Append change-event rows to bronze.document_updates (the embedded profile's stream source)."""
    if rows:
        lake.append(UPDATES, rows_table(UPDATES, [dict(r) for r in rows]), txn=txn)


def quarantine(lake: Lake, rows: Sequence[Mapping[str, Any]], *, txn: Txn | None = None) -> None:
    """Keep events or files that could not be applied, with their error, in bronze.quarantine."""
    if rows:
        lake.append(QUARANTINE, rows_table(QUARANTINE, [dict(r) for r in rows]), txn=txn)


def follow_index(lake: Lake, gold: TableSpec, *, model_id: str, chunker_id: str) -> int:
    """Make silver's ``chunks``, ``model_id`` and ``chunker_id`` describe ``gold``, the index just
    made active; returns how many documents it updated.

    An indexed document's counts were written for the index active when it was processed; after a
    blue-green switch to another chunker they would describe the retired one. Only rows at the
    version gold holds change: a document processed again meanwhile wrote the new index's counts.
    """
    counts = Counter(
        (r["tenant"], r["doc_id"], r["doc_version"])
        for r in lake.read(gold, columns=["tenant", "doc_id", "doc_version"]).to_pylist()
    )
    if not counts:
        return 0
    source = [
        {"tenant": t, "doc_id": d, "version": v, "status": "indexed", "chunks": n, "model_id": model_id,
         "chunker_id": chunker_id}
        for (t, d, v), n in counts.items()
    ]  # fmt: skip
    metrics = lake.merge(
        DOCUMENTS,
        rows_table(DOCUMENTS, source),
        predicate=DOCUMENTS.merge_on,
        build=lambda m: m.when_matched_update(
            updates={c: f"s.{c}" for c in ("chunks", "model_id", "chunker_id")},
            # One rewrite of silver per switch; delta-rs cannot plan IS DISTINCT FROM over mixed columns.
            predicate="t.version = s.version AND t.status = 'indexed'",
        ),
    )
    return int(metrics.get("num_target_rows_updated", 0))
