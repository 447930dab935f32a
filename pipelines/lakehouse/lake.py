"""The delta-rs engine: table creation, reads, and MERGEs that survive concurrent writers.

Several processes write the same tables (the API registers uploads, every Celery worker process
records statuses and chunks). delta-rs commits are optimistic: a commit that lost a race raises
``CommitFailedError`` and must be re-run against the new snapshot. On a local lake we also take a
per-table lock around each write (``Locks.shared``): on a local lake a file lock, which costs well
under a millisecond and turns a storm of conflicting retries into an orderly queue; on a lake on S3 a
shared Redis lease, which keeps commits out while a destructive operation (vacuum, restore) holds the
table exclusively, plus the table's Redis commit lane (``Lake.commit_lane``), the same orderly queue
across hosts. Writers outside the lane (Spark, lock-less tools) still race, and S3 conditional PUT makes
the loser retry. Table creation runs
once, under the ``bootstrap`` lock: concurrent creates on S3 crash or write a second table id.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, QueryBuilder, Transaction
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.table import TableMerger

from pipelines.errors import LakeWriteConflict
from pipelines.lakehouse.schemas import TABLES, TableSpec
from pipelines.retry import retry
from pipelines.storage.location import is_remote
from pipelines.storage.locks import FileLocks, Locks, NoLocks

__all__ = ["Lake", "Txn", "sql_quote"]

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 25
# Delta writers truncate string statistics to 32 characters; shorter values are stored whole.
_EXACT_STAT_CHARS = 32


def _outside(value: str, low: str | None, high: str | None) -> bool:
    """``value`` is certainly outside a file's [min, max] statistics. A truncated min is still a lower bound;
    a max is exact only when shorter than the truncation length."""
    if low is not None and value < low:
        return True
    return high is not None and len(high) < _EXACT_STAT_CHARS and value > high


def sql_quote(value: str) -> str:
    """A SQL string literal for a delta-rs predicate (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


Txn = tuple[str, int]
"""A Delta application transaction (app id, version): a write carrying one is done at most once."""


def _done(dt: DeltaTable, txn: Txn | None) -> bool:
    """True when ``dt`` already holds a commit of ``txn`` (or a later version of its app id)."""
    if txn is None:
        return False
    done = dt.transaction_version(txn[0])
    return done is not None and done >= txn[1]


def _commit_properties(txn: Txn | None) -> CommitProperties | None:
    if txn is None:
        return None
    # The same ``txn`` action Spark records for txnAppId/txnVersion, so either engine sees the other's.
    return CommitProperties(app_transactions=[Transaction(txn[0], txn[1], int(time.time() * 1000))])


class Lake:
    """One lake root holding the bronze, silver and gold tables.

    Args:
        root: local folder or object-store URI of the lake.
        locks: the table and bootstrap locks (default: file locks in ``<root>/_locks``, local lakes).
        storage_options: delta-rs storage options for remote lakes.
    """

    def __init__(
        self, root: str | Path, *, locks: Locks | None = None, storage_options: dict[str, str] | None = None
    ) -> None:
        self.root = str(root).rstrip("/")
        self.storage_options = storage_options
        self._local = not is_remote(self.root)
        if locks is None:
            locks = FileLocks(Path(self.root.removeprefix("file://")) / "_locks") if self._local else NoLocks()
        self.locks = locks
        self._tables: dict[str, DeltaTable] = {}
        self._mutex = threading.Lock()

    def uri(self, spec: TableSpec) -> str:
        return f"{self.root}/{spec.relpath}"

    def commit_lock(self, spec: TableSpec, *, exclusive: bool = False) -> AbstractContextManager[None]:
        """The table's lock, held around every commit of either engine (shared) or a destructive one (exclusive).

        A Spark MERGE holds it shared like a delta-rs commit, so a vacuum with retention 0 (exclusive)
        never deletes the files of a commit still in flight.
        """
        hold = self.locks.exclusive if exclusive else self.locks.shared
        return hold(_table_lock(spec))

    @property
    def is_local(self) -> bool:
        """The lake is a local folder (write locks apply, data files can be checked on disk)."""
        return self._local

    def ensure_tables(self, *, existing: Sequence[TableSpec] = ()) -> None:
        """Create every table that does not exist yet, and add the columns a newer doclake defines to the
        tables an older one created (safe to call from many processes and hosts).

        ``existing``: more tables (other indexes' gold) to bring up to date when they exist; never created here.
        """
        missing: list[TableSpec] = []
        outdated: list[TableSpec] = []
        for spec in [*TABLES.values(), *existing]:
            try:
                dt = DeltaTable(self.uri(spec), storage_options=self.storage_options)
            except TableNotFoundError:
                if spec.name in TABLES:
                    missing.append(spec)
                continue
            if _missing_columns(dt, spec):
                outdated.append(spec)
        if not missing and not outdated:
            return
        with self.locks.exclusive("bootstrap", timeout=300):
            for spec in missing:
                self._create(spec)
            for spec in outdated:
                self._add_missing_columns(spec)

    def _add_missing_columns(self, spec: TableSpec) -> None:
        from deltalake import Schema as DeltaSchema

        # Re-read under the lock: another process may have added them while we waited.
        dt = DeltaTable(self.uri(spec), storage_options=self.storage_options)
        columns = _missing_columns(dt, spec)
        if not columns:
            return
        fields = DeltaSchema.from_arrow(pa.schema([spec.schema.field(c) for c in columns])).fields
        with self.commit_lock(spec, exclusive=True):
            dt.alter.add_columns(fields)
        log.info("added column(s) %s to %s", ", ".join(columns), spec.name)

    def ensure(self, spec: TableSpec) -> None:
        """Create one table if it does not exist yet (under the bootstrap lock)."""
        if self.exists(spec):
            return
        with self.locks.exclusive("bootstrap", timeout=300):
            self._create(spec)

    def _create(self, spec: TableSpec) -> None:
        # Re-checked under the lock: another process may have created it while we waited.
        if self.exists(spec):
            return
        if self._local:
            Path(self.uri(spec)).mkdir(parents=True, exist_ok=True)
        DeltaTable.create(
            self.uri(spec), spec.schema, mode="ignore", name=spec.name, storage_options=self.storage_options
        )

    def exists(self, spec: TableSpec) -> bool:
        try:
            DeltaTable(self.uri(spec), storage_options=self.storage_options)
        except TableNotFoundError:
            return False
        return True

    def drop(self, spec: TableSpec) -> None:
        """Remove a whole table and its files (a dropped index's gold table)."""
        with self._mutex:
            self._tables.pop(spec.name, None)
        with self.commit_lock(spec, exclusive=True):
            if self._local:
                shutil.rmtree(self.uri(spec), ignore_errors=True)
                return
            # Remote lakes: delete every row, then vacuum every file; the empty log stays behind.
            dt = DeltaTable(self.uri(spec), storage_options=self.storage_options)
            dt.delete()
            dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)

    def table(self, spec: TableSpec) -> DeltaTable:
        """The table at its newest version (a cached handle, refreshed incrementally)."""
        with self._mutex:
            dt = self._tables.get(spec.name)
            if dt is None:
                dt = DeltaTable(self.uri(spec), storage_options=self.storage_options)
                self._tables[spec.name] = dt
            else:
                dt.update_incremental()
            return dt

    def snapshot(self, spec: TableSpec, *, version: int | None = None) -> DeltaTable:
        """A fresh handle, optionally at an older version (time travel)."""
        dt = DeltaTable(self.uri(spec), storage_options=self.storage_options)
        if version is not None:
            dt.load_as_version(version)
        return dt

    def read(self, spec: TableSpec, where: str | None = None, *, columns: list[str] | None = None) -> pa.Table:
        """Rows of the newest version matching the SQL predicate ``where``.

        Reads go through delta-rs's own DataFusion engine: it prunes files by their statistics,
        and unlike a pyarrow dataset filter it copes with the string_view columns delta-rs writes.
        """
        names = columns or spec.schema.names
        sql = f"SELECT {', '.join(names)} FROM t" + (f" WHERE {where}" if where else "")
        reader = QueryBuilder().register("t", self.table(spec)).execute(sql)
        table = pa.table(reader.read_all())
        return table.cast(pa.schema([spec.schema.field(n) for n in names]))

    def count(self, spec: TableSpec, *, tenant: str | None = None) -> int:
        """Rows of the newest version (of ``tenant``), from the log's per-file record counts when they tell.

        Every file's add action carries its row count and the min/max of its columns, so the count of a
        table whose files each hold one tenant reads no data file; a scan of the gold table's ids cost the
        S3 server 40 ms of CPU per call at 1,200 rows, and grows with the table. A file that mixes tenants,
        lacks statistics or has deleted rows (a deletion vector) makes it a scan.
        """
        dt = self.table(spec)
        actions = pa.table(dt.get_add_actions(flatten=True))
        names = set(actions.schema.names)
        if actions.num_rows == 0:
            return 0
        usable = "num_records" in names and not any(n.startswith("deletionVector") for n in names)
        if usable and tenant is not None:
            # Long strings' statistics are truncated prefixes: only short ones compare exactly.
            usable = {"min.tenant", "max.tenant"} <= names and len(tenant) < _EXACT_STAT_CHARS
        if usable:
            total = 0
            columns = ["num_records"] + (["min.tenant", "max.tenant"] if tenant is not None else [])
            for row in actions.select(columns).to_pylist():
                if row["num_records"] is None:
                    break
                if tenant is None or row["min.tenant"] == row["max.tenant"] == tenant:
                    total += int(row["num_records"])
                elif _outside(tenant, row["min.tenant"], row["max.tenant"]):
                    continue  # no row of this tenant in the file
                else:
                    break  # a file that may hold this tenant among others: only a scan can tell
            else:
                return total
        where = f"tenant = {sql_quote(tenant)}" if tenant is not None else None
        sql = "SELECT COUNT(*) AS n FROM t" + (f" WHERE {where}" if where else "")
        result = pa.table(QueryBuilder().register("t", dt).execute(sql).read_all())
        return int(result.column("n")[0].as_py())

    def merge(
        self,
        spec: TableSpec,
        source: pa.Table,
        *,
        predicate: str,
        build: Callable[[TableMerger], TableMerger],
        txn: Txn | None = None,
    ) -> dict[str, Any]:
        """MERGE ``source`` (alias ``s``) into the table (alias ``t``), retrying lost commit races.

        ``build`` adds the when-clauses. Returns delta-rs's merge metrics, or ``{"skipped": True}``
        when the table already holds the commit of ``txn`` (a replayed stream batch).
        """
        source = source.cast(spec.schema) if source.schema != spec.schema else source

        def run() -> dict[str, Any]:
            dt = self.table(spec)
            if _done(dt, txn):
                return {"skipped": True}
            merger = dt.merge(
                source,
                predicate=predicate,
                source_alias="s",
                target_alias="t",
                commit_properties=_commit_properties(txn),
            )
            metrics: dict[str, Any] = build(merger).execute()
            return metrics

        return self._commit(spec, run)

    def append(self, spec: TableSpec, rows: pa.Table, *, txn: Txn | None = None) -> None:
        """Append ``rows`` (bronze event logs only: derived data is always MERGEd), once per ``txn``."""
        from deltalake import write_deltalake

        rows = rows.cast(spec.schema) if rows.schema != spec.schema else rows

        def run() -> dict[str, Any]:
            dt = self.table(spec)
            if not _done(dt, txn):
                write_deltalake(dt, rows, mode="append", commit_properties=_commit_properties(txn))
            return {}

        self._commit(spec, run)

    def delete(self, spec: TableSpec, predicate: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            metrics: dict[str, Any] = self.table(spec).delete(predicate)
            return metrics

        return self._commit(spec, run)

    def compact(self, spec: TableSpec, *, min_files: int = 64) -> dict[str, Any] | None:
        """Rewrite small files into large ones once a table has ``min_files`` or more.

        Every status change and chunk MERGE adds a small file; without this, reads of a busy table
        slow down with every upload. Older versions stay readable (no vacuum here).
        """
        if len(self.table(spec).file_uris()) < min_files:
            return None

        def run() -> dict[str, Any]:
            metrics: dict[str, Any] = self.table(spec).optimize.compact()
            return metrics

        metrics = self._commit(spec, run)
        with self.commit_lock(spec):
            self.table(spec).create_checkpoint()
        return metrics

    def maintain(
        self, spec: TableSpec, run: Callable[[DeltaTable], dict[str, Any]], *, exclusive: bool = True
    ) -> dict[str, Any]:
        """Run a maintenance operation (optimize, vacuum, restore, purge) on the newest handle.

        It holds the table's lock exclusively (on every host, with Redis locks), so a vacuum cannot
        remove a file a concurrent MERGE is about to commit, and it is re-run if it loses a race.
        ``exclusive=False`` for operations that rewrite without removing (compaction).
        """
        return self._commit(spec, lambda: run(self.table(spec)), exclusive=exclusive)

    def commit_lane(self, spec: TableSpec) -> AbstractContextManager[None]:
        """The queue of this lake's delta-rs commits to one table, on every host (Redis locks only).

        Shared table leases let commits race, and on S3 the losers re-run their whole MERGE after a
        backoff: with the API, two extraction processes and the embedder all MERGEing silver, 24 of 45
        silver commits lost a race in the ingest bench. Taking turns costs two Redis round trips a commit
        instead. Local lakes already queue (a file lock's shared mode is exclusive); Spark commits and
        lock-less writers still race, and conditional PUT still settles those.
        """
        if not self.locks.spans_hosts:
            return nullcontext()
        return self.locks.exclusive(f"{_table_lock(spec)}/commits", timeout=120)

    def _commit(self, spec: TableSpec, run: Callable[[], dict[str, Any]], *, exclusive: bool = False) -> dict[str, Any]:
        def locked() -> dict[str, Any]:
            # Lane first, then the table lease: a vacuum (exclusive) never waits on a lane holder that waits on it.
            with (
                nullcontext() if exclusive else self.commit_lane(spec),
                self.commit_lock(spec, exclusive=exclusive),
            ):
                return run()

        # Another writer committed first: back off and re-run on the new snapshot.
        return retry(
            locked,
            retry_on=lambda e: isinstance(e, CommitFailedError),
            attempts=_MAX_ATTEMPTS,
            base=0.04,
            cap=2.0,
            what=f"{spec.name} commit",
            give_up=lambda e: LakeWriteConflict(f"{spec.name}: commit kept conflicting: {e}"),
        )


def _missing_columns(dt: DeltaTable, spec: TableSpec) -> list[str]:
    """Columns of ``spec`` (all nullable additions) that the stored table does not have yet."""
    have = {f.name for f in dt.schema().fields}
    return [name for name in spec.schema.names if name not in have]


def _table_lock(spec: TableSpec) -> str:
    return f"tables/{spec.name}"
