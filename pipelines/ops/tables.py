"""Operator maintenance of the Delta tables: optimize (compaction + Z-ORDER), vacuum, history, restore.

Every commit is a function of pipelines.lakehouse.maintenance, which runs it through
``Lake.maintain``: it holds the table's write lock, so on a local lake it is serialised with the
API's and workers' MERGEs instead of racing them.

Which tables belong together: silver.documents says which document versions exist and their
status; each index's gold table holds their chunks. Restoring one without the other leaves them
disagreeing (e.g. gold chunks of a document silver calls ``deleted`` are not served), so restore
``all`` at a timestamp (version numbers differ per table) to go back in time consistently.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from pipelines.errors import DocLakeError, InvalidInput
from pipelines.lakehouse.maintenance import optimize_table, restore_table, spark_optimize_table, vacuum_table
from pipelines.lakehouse.schemas import DOCUMENTS, INDEXES, QUARANTINE, RAW_OBJECTS, TABLES, UPDATES, TableSpec
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime
from pipelines.storage.location import missing_files
from pipelines.vectorstore.maintenance import compact_store

__all__ = [
    "VACUUM_GUARD_HOURS",
    "HistoryEntry",
    "OptimizeParams",
    "OptimizeReport",
    "RestoreParams",
    "RestoreReport",
    "TableHistory",
    "TableOptimized",
    "TableRestored",
    "VacuumParams",
    "VacuumReport",
    "history",
    "optimize",
    "resolve_tables",
    "restore",
    "vacuum",
]

log = logging.getLogger(__name__)

# Delta's own default (delta.deletedFileRetentionDuration = 7 days). Older versions are what
# ``as_of`` search, audits and ``restore`` read, and a reader that opened a snapshot a moment ago
# may still be fetching its files: a shorter retention breaks them without warning.
VACUUM_GUARD_HOURS = 168.0
ZORDER_COLUMNS = ("tenant", "doc_id")

_ALIASES: dict[str, TableSpec] = {
    "raw": RAW_OBJECTS,
    "raw_objects": RAW_OBJECTS,
    "silver": DOCUMENTS,
    "documents": DOCUMENTS,
    "updates": UPDATES,
    "document_updates": UPDATES,
    "quarantine": QUARANTINE,
    "indexes": INDEXES,
}


def resolve_tables(rt: Runtime, names: list[str] | None) -> list[TableSpec]:
    """Table specs for names: full names (``silver.documents``, ``gold.chunks__<index>``), short aliases
    (``silver``, ``raw``, ``updates``…), ``gold``/``chunks`` (the active index's gold) or an index id.
    ``None`` means every table, including every live index's gold table.

    Raises:
        InvalidInput: an unknown name.
    """
    indexes = rt.indexes()
    known: dict[str, TableSpec] = {**TABLES, **_ALIASES}
    for index in indexes:
        known[index.gold.name] = index.gold
        known[index.index_id] = index.gold
    if names is None:
        specs = [*TABLES.values(), *(i.gold for i in indexes)]
    else:
        specs = []
        for name in names:
            key = name.strip().lower()
            if key in ("gold", "chunks"):
                spec = rt.index(fresh=True).gold
            elif key in known:
                spec = known[key]
            else:
                raise InvalidInput(f"unknown table {name!r}; one of {', '.join(sorted(known))} or gold")
            specs.append(spec)
    unique: dict[str, TableSpec] = {}
    for spec in specs:
        unique.setdefault(spec.name, spec)
    return list(unique.values())


def _zorderable(spec: TableSpec) -> bool:
    # Bronze tables are append logs read in arrival order; Z-ORDER pays off where reads filter by
    # tenant and document (silver lookups, gold hydration, as_of search, purge).
    return not spec.name.startswith(("bronze.", "meta.")) and all(c in spec.schema.names for c in ZORDER_COLUMNS)


def _wrap(spec: TableSpec, what: str, e: Exception) -> DocLakeError:
    if isinstance(e, DocLakeError):
        return e
    return DocLakeError(f"{what} of {spec.name} failed: {e}")


# --- optimize ---------------------------------------------------------------------------------


class OptimizeParams(BaseModel):
    tables: list[str] | None = Field(default=None, description="Tables to optimize (default: all).")
    zorder: bool = Field(default=True, description="Z-ORDER silver and gold by (tenant, doc_id); else compact only.")
    engine: Literal["spark", "local"] = Field(
        default="spark", description="spark: OPTIMIZE through Spark + delta-spark; local: delta-rs (no JVM)."
    )
    vectors: bool = Field(default=True, description="Also compact every index's vector store.")


class TableOptimized(BaseModel):
    table: str
    zordered: bool = Field(description="Z-ORDERed (else compacted).")
    files_before: int
    files_after: int
    version: int = Field(description="Table version after the optimize.")


class OptimizeReport(BaseModel):
    engine: str
    tables: list[TableOptimized]
    vector_stores: list[str] = Field(default_factory=list, description="Indexes whose vector store was compacted.")


def optimize(rt: Runtime, params: OptimizeParams, progress: Progress | None = None) -> OptimizeReport:
    """Compact every table's small files and Z-ORDER silver and gold by (tenant, doc_id).

    Older versions stay readable (nothing is vacuumed). With ``engine="spark"`` the work runs as
    ``OPTIMIZE … ZORDER BY`` in the project's SparkSession (a JVM starts on first use).

    Raises:
        InvalidInput: an unknown table.
        ConfigError: Spark or its Delta jars are not available.
    """
    progress = progress or Progress()
    specs = resolve_tables(rt, params.tables)
    spark: Any = None
    if params.engine == "spark":
        from pipelines.lakehouse.spark import get_spark

        progress.stage("starting spark", unit="sessions")
        spark = get_spark(rt.settings, app_name="doclake-optimize")
    progress.stage("optimizing", total=len(specs), unit="tables")
    results: list[TableOptimized] = []
    for spec in specs:
        z = params.zorder and _zorderable(spec)
        before = len(rt.lake.table(spec).file_uris())
        zorder = ZORDER_COLUMNS if z else ()
        try:
            if before and spark is not None:
                spark_optimize_table(rt.lake, spec, spark, zorder=zorder)
            elif before:
                optimize_table(rt.lake, spec, zorder=zorder)
        except Exception as e:
            raise _wrap(spec, "optimize", e) from e
        dt = rt.lake.snapshot(spec)
        results.append(
            TableOptimized(
                table=spec.name, zordered=z, files_before=before, files_after=len(dt.file_uris()), version=dt.version()
            )
        )
        progress.advance(1, files_removed=max(0, before - results[-1].files_after))
    stores: list[str] = []
    if params.vectors:
        indexes = rt.indexes()
        progress.stage("optimizing vectors", total=len(indexes), unit="indexes")
        for index in indexes:
            compact_store(rt.vectors_for(index))
            stores.append(index.index_id)
            progress.advance(1)
    progress.finish()
    return OptimizeReport(engine=params.engine, tables=results, vector_stores=stores)


# --- vacuum -----------------------------------------------------------------------------------


class VacuumParams(BaseModel):
    retention_hours: float = Field(
        default=VACUUM_GUARD_HOURS, ge=0, description="Keep files still needed by versions younger than this."
    )
    force: bool = Field(
        default=False,
        description=f"Allow a retention under {VACUUM_GUARD_HOURS:g} h (ends time travel and as_of search before it).",
    )
    dry_run: bool = Field(default=False, description="Only list the files that would be removed.")
    tables: list[str] | None = Field(default=None, description="Tables to vacuum (default: all).")


class VacuumReport(BaseModel):
    retention_hours: float
    dry_run: bool
    files: dict[str, int] = Field(description="Files removed (or, with dry_run, removable) per table.")


def vacuum(rt: Runtime, params: VacuumParams, progress: Progress | None = None) -> VacuumReport:
    """Remove data files no version younger than the retention needs.

    Raises:
        InvalidInput: a retention under the guard without ``force``, or an unknown table.
    """
    if params.retention_hours < VACUUM_GUARD_HOURS and not params.force:
        raise InvalidInput(
            f"retention {params.retention_hours:g} h is under {VACUUM_GUARD_HOURS:g} h: versions older than it"
            " (as_of search, restore, readers still holding a snapshot) would lose their files; pass force to do it"
        )
    progress = progress or Progress()
    specs = resolve_tables(rt, params.tables)
    # delta-rs takes whole hours: round up, so we never remove more than asked.
    hours = math.ceil(params.retention_hours)
    progress.stage("vacuuming", total=len(specs), unit="tables")
    files: dict[str, int] = {}
    for spec in specs:
        try:
            files[spec.name] = vacuum_table(
                rt.lake, spec, retention_hours=hours, dry_run=params.dry_run, enforce_retention=not params.force
            )
        except Exception as e:
            if "retention" in str(e).lower() and not isinstance(e, DocLakeError):
                raise InvalidInput(f"{spec.name}: {e} (pass force to override the table's own setting)") from e
            raise _wrap(spec, "vacuum", e) from e
        progress.advance(1, files=files[spec.name])
    progress.finish()
    return VacuumReport(retention_hours=params.retention_hours, dry_run=params.dry_run, files=files)


# --- history ----------------------------------------------------------------------------------


class HistoryEntry(BaseModel):
    version: int
    timestamp: datetime | None
    operation: str
    parameters: dict[str, str] = Field(default_factory=dict, description="Operation parameters (shortened).")
    metrics: dict[str, str] = Field(default_factory=dict, description="Operation metrics.")


class TableHistory(BaseModel):
    table: str
    version: int = Field(description="The newest version.")
    entries: list[HistoryEntry] = Field(description="Newest first.")


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def history(rt: Runtime, table: str, *, limit: int = 20) -> TableHistory:
    """The newest ``limit`` commits of a table (version, time, operation, parameters).

    Raises:
        InvalidInput: an unknown table.
    """
    (spec,) = resolve_tables(rt, [table])
    dt = rt.lake.snapshot(spec)
    entries = []
    for commit in dt.history(limit):
        ts = commit.get("timestamp")
        entries.append(
            HistoryEntry(
                version=int(commit["version"]),
                timestamp=datetime.fromtimestamp(ts / 1000, UTC) if ts is not None else None,
                operation=str(commit.get("operation", "")),
                parameters={k: _short(v) for k, v in (commit.get("operationParameters") or {}).items()},
                metrics={k: _short(v) for k, v in (commit.get("operationMetrics") or {}).items()},
            )
        )
    entries.sort(key=lambda e: e.version, reverse=True)
    return TableHistory(table=spec.name, version=dt.version(), entries=entries)


# --- restore ----------------------------------------------------------------------------------


class RestoreParams(BaseModel):
    table: str = Field(
        description="Table to restore, or 'all' (silver and every index's gold: needs a timestamp, since"
        " version numbers differ per table)."
    )
    version: int | None = Field(default=None, ge=0, description="Version to restore (one table).")
    timestamp: datetime | None = Field(default=None, description="Restore the version current at this time (UTC).")
    reconcile: bool = Field(default=True, description="Re-mirror the vector stores from the restored gold.")

    @model_validator(mode="after")
    def _one_target(self) -> RestoreParams:
        if (self.version is None) == (self.timestamp is None):
            raise ValueError("give exactly one of version or timestamp")
        if self.table.strip().lower() == "all" and self.version is not None:
            raise ValueError("table 'all' needs a timestamp: version numbers differ per table")
        return self


class TableRestored(BaseModel):
    table: str
    previous_version: int = Field(description="The newest version before the restore.")
    restored_to: str = Field(description="The version or time restored.")
    version: int = Field(description="The new version (a restore is a new commit; history is kept).")


class RestoreReport(BaseModel):
    tables: list[TableRestored]
    reconciled: list[dict[str, Any]] = Field(
        default_factory=list, description="Reconcile reports of the re-mirrored indexes."
    )


def restore(rt: Runtime, params: RestoreParams, progress: Progress | None = None) -> RestoreReport:
    """Bring tables back to an older version, then re-mirror the vector stores from gold.

    A restore is a new commit: the versions in between stay in the history (and can be restored in
    turn) until a vacuum removes their files. Silver is the other half of gold — restore both
    (``table="all"``) unless you know they agree. Documents being ingested during a restore may be
    rolled back with it: pause ingestion for a consistent result.

    Raises:
        InvalidInput: an unknown table, or a version that does not exist or whose files were vacuumed.
    """
    progress = progress or Progress()
    indexes = rt.indexes()
    if params.table.strip().lower() == "all":
        specs = [DOCUMENTS, *(i.gold for i in indexes)]
    else:
        specs = resolve_tables(rt, [params.table])
    target: int | datetime
    if params.version is not None:
        target = params.version
    else:
        assert params.timestamp is not None
        ts = params.timestamp
        target = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    # Check every target first: a restore of 'all' that fails half-way would leave silver and gold
    # at different points in time, the very disagreement it exists to avoid.
    for spec in specs:
        _check_target(rt, spec, target)
    progress.stage("restoring", total=len(specs), unit="tables")
    restored: list[TableRestored] = []
    for spec in specs:
        previous = rt.lake.table(spec).version()
        try:
            restore_table(rt.lake, spec, target)
        except DocLakeError:
            raise
        except Exception as e:  # delta-rs: no such version, or its files were vacuumed
            raise InvalidInput(f"cannot restore {spec.name} to {target}: {e}") from e
        restored.append(
            TableRestored(
                table=spec.name,
                previous_version=previous,
                restored_to=str(target if isinstance(target, int) else target.isoformat()),
                version=rt.lake.table(spec).version(),
            )
        )
        progress.advance(1)
    report = RestoreReport(tables=restored)
    names = {s.name for s in specs}
    to_mirror = [i for i in indexes if DOCUMENTS.name in names or i.gold.name in names]
    if params.reconcile and to_mirror:
        from pipelines.ops.reconcile import ReconcileParams, reconcile

        for index in to_mirror:
            summary = reconcile(rt, ReconcileParams(repair=True, index_id=index.index_id), progress)
            report.reconciled.append(summary.model_dump(mode="json"))
    progress.finish()
    log.info("restored %s", [(r.table, r.restored_to) for r in restored])
    return report


def _check_target(rt: Runtime, spec: TableSpec, target: int | datetime) -> None:
    """Raise InvalidInput unless ``spec`` has a version at ``target`` whose files are all still there."""
    try:
        dt = rt.lake.snapshot(spec)
        dt.load_as_version(target)
        uris = dt.file_uris()
    except Exception as e:  # delta-rs: no such version, or the table did not exist yet
        raise InvalidInput(f"cannot restore {spec.name} to {target}: {e}") from e
    gone = missing_files(rt.settings, uris)
    if gone:
        raise InvalidInput(
            f"cannot restore {spec.name} to {target}: {len(gone)} of its files were vacuumed (e.g. {gone[0]})"
        )
