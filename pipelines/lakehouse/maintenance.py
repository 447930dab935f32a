"""Maintenance commits on Delta tables: optimize, vacuum, restore, purge rows, erase history, clear.

Each one runs through ``Lake.maintain``: those that remove files (vacuum, restore, purge, erase)
hold the table's lock exclusively, on every host when the locks are Redis ones, so no MERGE is
half-way through a commit whose files they would delete; a commit that lost a race is re-run on
the new snapshot. Callers (pipelines/ops) decide what to run and report; the
commits themselves live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable

from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import TableSpec
from pipelines.storage.location import spark_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "clear_table",
    "erase_history",
    "optimize_table",
    "purge_rows",
    "restore_table",
    "spark_optimize_table",
    "vacuum_table",
]

# The default of ``delta.logRetentionDuration``, put back after ``erase_history`` cleaned the log.
_LOG_RETENTION = "interval 30 days"


def optimize_table(lake: Lake, spec: TableSpec, *, zorder: Sequence[str] = ()) -> dict[str, Any]:
    """Compact the table's small files with delta-rs, Z-ORDERed by ``zorder`` when given; returns the metrics.

    Older versions stay readable (nothing is vacuumed).
    """

    def run(dt: DeltaTable) -> dict[str, Any]:
        metrics: dict[str, Any] = dt.optimize.z_order(list(zorder)) if zorder else dt.optimize.compact()
        return metrics

    return lake.maintain(spec, run, exclusive=False)  # rewrites files, removes none


def spark_optimize_table(lake: Lake, spec: TableSpec, spark: SparkSession, *, zorder: Sequence[str] = ()) -> None:
    """``optimize_table`` through Spark: ``OPTIMIZE delta.`<uri>` [ZORDER BY (...)]``, under the table's write lock."""
    uri = spark_uri(lake.uri(spec))
    clause = f" ZORDER BY ({', '.join(zorder)})" if zorder else ""

    def run(dt: DeltaTable) -> dict[str, Any]:
        spark.sql(f"OPTIMIZE delta.`{uri}`{clause}").collect()
        return {}

    lake.maintain(spec, run, exclusive=False)


def vacuum_table(
    lake: Lake, spec: TableSpec, *, retention_hours: int, dry_run: bool = False, enforce_retention: bool = True
) -> int:
    """Remove data files no version younger than ``retention_hours`` needs; returns how many (or would, dry run).

    With ``enforce_retention`` delta-rs refuses a retention under the table's own setting.
    """

    def run(dt: DeltaTable) -> dict[str, Any]:
        removed = dt.vacuum(
            retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=enforce_retention
        )
        return {"files": len(removed)}

    return int(lake.maintain(spec, run)["files"])


def restore_table(lake: Lake, spec: TableSpec, target: int | datetime) -> dict[str, Any]:
    """Bring the table back to a version (or the version current at a time) as a new commit; returns the metrics."""

    def run(dt: DeltaTable) -> dict[str, Any]:
        metrics: dict[str, Any] = dt.restore(target)
        return metrics

    return lake.maintain(spec, run)


def purge_rows(lake: Lake, spec: TableSpec, tenant: str, doc_ids: Sequence[str] | None) -> int:
    """Delete the rows of these documents (or, with ``None``, every row of the tenant); returns how many.

    A MERGE with the keys as its source, not a DELETE with a predicate: the predicate, ids and all,
    would be written into the commit info of the transaction log and outlive the purge.
    """
    if doc_ids is None:
        keys = pa.table({"tenant": pa.array([tenant], pa.string())})
        predicate = "t.tenant = s.tenant"
    else:
        keys = pa.table(
            {"tenant": pa.array([tenant] * len(doc_ids), pa.string()), "doc_id": pa.array(list(doc_ids), pa.string())}
        )
        predicate = "t.tenant = s.tenant AND t.doc_id = s.doc_id"

    def run(dt: DeltaTable) -> dict[str, Any]:
        metrics: dict[str, Any] = (
            dt.merge(keys, predicate=predicate, source_alias="s", target_alias="t").when_matched_delete().execute()
        )
        return metrics

    return int(lake.maintain(spec, run).get("num_target_rows_deleted", 0))


def erase_history(lake: Lake, spec: TableSpec) -> int:
    """Remove every file no longer in the newest version, then the log entries before a new checkpoint.

    Returns how many data files were removed. Files: a full vacuum (every unreferenced file, not
    only the remembered tombstones, whose memory ends after the delete retention) is safe when we hold
    the table's lock exclusively and every writer takes it (a local lake, or any lake with Redis
    locks), so no writer has an uncommitted file; otherwise only tombstoned files are removed. Log:
    the add actions of the old files carry min/max statistics (ids, the first characters of the
    text); a checkpoint plus a log cleanup with a zero retention drops them, then the default
    retention is put back. Time travel to older versions ends.
    """
    full = lake.is_local or lake.locks.spans_hosts

    def run(dt: DeltaTable) -> dict[str, Any]:
        files = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=full)
        dt.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
        try:
            dt.create_checkpoint()
            dt.cleanup_metadata()
        finally:
            dt.alter.set_table_properties({"delta.logRetentionDuration": _LOG_RETENTION})
        return {"files": len(files)}

    return int(lake.maintain(spec, run)["files"])


def clear_table(lake: Lake, spec: TableSpec) -> int:
    """Delete every row of the table (the table and its history stay); returns how many."""
    return int(lake.delete(spec, "true").get("num_deleted_rows", 0))
