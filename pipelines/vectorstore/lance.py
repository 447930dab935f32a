"""LanceDB vector store: the embedded default, shared by the API process and the worker processes.

``read_consistency_interval=0`` makes every query check for commits made by other processes, which
is what lets the API see a worker's writes without a restart (measured: the other candidates either
serve stale reads or refuse a second process).

The root may be a local folder or ``s3://…``: Lance commits a version with a conditional PUT, so
upserts from many hosts race safely. What rewrites the table (index builds, compaction, erasing,
dropping) runs under the store's lock, held on every host with Redis locks, and is retried.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from pipelines.contracts.acl import readers, stored_acl
from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.ids import MetadataValue
from pipelines.errors import VectorStoreError
from pipelines.lakehouse.lake import sql_quote
from pipelines.retry import retry
from pipelines.storage.locks import Locks, NoLocks
from pipelines.vectorstore.ann import INDEX_TYPE, IndexShape, UpkeepPlan, ann_params, plan_upkeep
from pipelines.vectorstore.base import StoredId, VectorHit, metadata_tags

__all__ = ["LanceVectorStore", "acl_predicate"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# lance's index statistics would otherwise carry every IVF centroid (and warn that they will not).
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

_TABLE = "chunks"
# Every partition is probed (lance caps nprobes at the partition count; see pipelines.vectorstore.ann). No
# re-rank on the full vectors: it cost 1.7 ms a query at 100k rows for no recall, so an indexed search's score
# is the cosine of the scalar-quantised vectors (8 bits a dimension: off by about 0.005).
_NPROBES_ALL = 1024
# Scalar indexes built with the ANN index: the tenant and metadata prefilters then read an index instead
# of scanning the column (100k rows: the tenant prefilter cost 9 ms a query unindexed, 2.5 ms with BITMAP).
_SCALAR_INDEXES = {"tenant": "BITMAP", "meta_tags": "LABEL_LIST", "acl": "LABEL_LIST"}
# Fragments a compaction pass rewrites at most: one pass costs what a few uploads cost, never a table rewrite.
_COMPACT_MAX_SOURCE_ROWS = 200_000
_ROWS_TTL_S = 30.0
# A tenant with at least this share of an indexed table is postfiltered over k / share * margin + 10 candidates.
_POSTFILTER_MIN_SHARE = 0.5
_POSTFILTER_MARGIN = 1.5


def _schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("doc_version", pa.int64()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("text", pa.string()),
            pa.field("filename", pa.string()),
            pa.field("page_start", pa.int32()),
            pa.field("page_end", pa.int32()),
            pa.field("char_start", pa.int64()),
            pa.field("char_end", pa.int64()),
            pa.field("metadata_json", pa.string()),
            pa.field("meta_tags", pa.list_(pa.string())),
            # Who may read the row's document; public documents hold [PUBLIC] (pipelines.contracts.acl), so the
            # read check is one array_has_any that the LABEL_LIST index serves. Added after v1 (see _ensure_acl).
            pa.field("acl", pa.list_(pa.string())),
        ]
    )


# What a hit carries: every column but the vector, the tag list and the acl (fetching them cost ~3 ms a query;
# tables made before access control have no acl column).
_HIT_COLUMNS = [f.name for f in _schema(1) if f.name not in ("vector", "meta_tags", "acl")]


def _in_list(values: list[str]) -> str:
    return "(" + ", ".join(sql_quote(v) for v in values) + ")"


def acl_predicate(principals: Sequence[str]) -> str:
    """The Lance filter of rows a caller with ``principals`` may read (the only place it is spelled)."""
    return f"array_has_any(acl, [{', '.join(sql_quote(p) for p in readers(principals))}])"


def _where(tenant: str, filter: dict[str, MetadataValue] | None, principals: Sequence[str], *, acl_column: bool) -> str:
    where = f"tenant = {sql_quote(tenant)}"
    tags = metadata_tags(filter or {})
    if tags:
        where += f" AND array_has_all(meta_tags, [{', '.join(sql_quote(t) for t in tags)}])"
    # A table made before access control has no acl column and no document with an acl (the first
    # upsert of one adds the column): every row is public.
    if acl_column:
        where += f" AND {acl_predicate(principals)}"
    return where


def _record(row: dict[str, Any]) -> VectorRecord:
    return VectorRecord(
        id=row["id"],
        tenant=row["tenant"],
        doc_id=row["doc_id"],
        doc_version=row["doc_version"],
        vector=[],  # not returned to callers; saves copying 384 floats per hit
        text=row["text"] or "",
        filename=row["filename"],
        page_start=row["page_start"],
        page_end=row["page_end"],
        char_start=row["char_start"] or 0,
        char_end=row["char_end"] or 0,
        metadata=json.loads(row["metadata_json"] or "{}"),
    )


class LanceVectorStore:
    """Vector store over one LanceDB table at ``path``; the table is created on the first upsert.

    Args:
        path: local folder or ``s3://bucket/prefix``.
        storage_options: LanceDB's object-store options for a remote root.
        locks: where the lock of table rewrites is taken (default: none, one process).
    """

    keyword_search = True  # lance's own BM25 index over the text column

    def __init__(
        self,
        path: Path | str,
        *,
        table_name: str = _TABLE,
        ann_index_min_rows: int = 50_000,
        storage_options: dict[str, str] | None = None,
        locks: Locks | None = None,
    ) -> None:
        import lancedb

        self.path = str(path)
        self.table_name = table_name
        self.ann_index_min_rows = ann_index_min_rows
        self.storage_options = storage_options
        self._locks = locks or NoLocks()
        self._db = lancedb.connect(self.path, read_consistency_interval=timedelta(0), storage_options=storage_options)
        self._table: Any = None
        self._fts_ready = False
        self._lock = threading.Lock()
        self._rows_cached, self._rows_at = 0, -_ROWS_TTL_S
        self._indexed = False
        self._shares: dict[str, float] = {}
        self._acl_ready = False

    def _open(self) -> Any:
        if self._table is None:
            with self._lock:
                if self._table is None and self.table_name in self._db.list_tables().tables:
                    self._table = self._db.open_table(self.table_name)
        return self._table

    def _open_or_create(self, dim: int) -> Any:
        table = self._open()
        if table is None:
            with self._lock, self._locks.exclusive(self._lock_name, timeout=120):
                self._table = self._db.create_table(self.table_name, schema=_schema(dim), exist_ok=True)
                # The full-text index is made with the (empty) table, so keyword search works from the
                # first row on; housekeeping keeps it current.
                self._ensure_fts_index(self._table)
            table = self._table
        self._ensure_acl(table)
        return table

    def _has_acl(self, table: Any) -> bool:
        if not self._acl_ready:
            table.checkout_latest()
            self._acl_ready = "acl" in table.schema.names
        return self._acl_ready

    def _ensure_acl(self, table: Any) -> None:
        """Give a table made before access control its acl column, every existing row public.

        Done by the first write (a document with an acl cannot be stored without it) or by housekeeping.
        """
        if not self._has_acl(table):
            self._rewrite(f"adding the acl column to {self.table_name}", lambda: self._add_acl(table))

    def _add_acl(self, table: Any) -> None:
        # Two steps, so the column stays nullable like a new table's: lance's ``add_columns`` with an SQL
        # value makes it non-null, and upserts would then not match the table's schema. Call it holding the lock.
        try:
            table.checkout_latest()
            if "acl" not in table.schema.names:
                table.add_columns(pa.field("acl", pa.list_(pa.string())))
                log.info("added the acl column to %s (existing rows public)", self.table_name)
            table.update(where="acl IS NULL", values_sql={"acl": f"make_array({sql_quote(stored_acl(None)[0])})"})
        except Exception as e:  # lance raises plain RuntimeError/OSError on commit conflicts
            raise VectorStoreError(f"adding the acl column to {self.table_name} failed: {e}") from e
        self._acl_ready = True

    @property
    def _lock_name(self) -> str:
        return f"vectors/{self.table_name}"

    def _rewrite(self, what: str, operation: Callable[[], T]) -> T:
        """Run a table rewrite under the store's lock, re-run if another writer's commit won."""

        def locked() -> T:
            with self._locks.exclusive(self._lock_name):
                return operation()

        return retry(
            locked, retry_on=lambda e: isinstance(e, VectorStoreError), attempts=4, base=0.5, cap=5.0, what=what
        )

    def _index_types(self, table: Any) -> set[str]:
        return {str(i.index_type) for i in table.list_indices()}

    def _ensure_fts_index(self, table: Any) -> None:
        """The BM25 full-text index over ``text``; made once, then kept current by ``optimize``.

        Rows written after the index was built are still found (lance scans unindexed fragments
        next to the index); ``optimize`` folds them in so that scan stays small.
        """
        if self._fts_ready or "FTS" in self._index_types(table):
            self._fts_ready = True
            return
        try:
            table.create_fts_index("text", use_tantivy=False, replace=True)
        except Exception as e:  # two processes creating it at once: one wins, the other's commit fails
            if "FTS" not in self._index_types(table):
                raise VectorStoreError(f"creating the full-text index failed: {e}") from e
        self._fts_ready = True

    def upsert(self, records: list[VectorRecord]) -> None:
        if not records:
            return
        dim = len(records[0].vector)
        table = self._open_or_create(dim)
        rows = [
            {
                "id": r.id,
                "tenant": r.tenant,
                "doc_id": r.doc_id,
                "doc_version": r.doc_version,
                "vector": r.vector,
                "text": r.text,
                "filename": r.filename,
                "page_start": r.page_start,
                "page_end": r.page_end,
                "char_start": r.char_start,
                "char_end": r.char_end,
                "metadata_json": json.dumps(r.metadata, sort_keys=True),
                "meta_tags": metadata_tags(r.metadata),
                "acl": stored_acl(r.acl),
            }
            for r in records
        ]
        data = pa.Table.from_pylist(rows, schema=_schema(dim))
        try:
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
        except Exception as e:  # lance raises plain RuntimeError/OSError on commit or IO trouble
            raise VectorStoreError(f"upsert of {len(records)} vectors failed: {e}") from e

    def delete(self, ids: list[str], *, tenant: str, doc_id: str) -> None:
        table = self._open()
        if table is None or not ids:
            return
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            try:
                table.delete(
                    f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)} AND id IN {_in_list(batch)}"
                )
            except Exception as e:
                raise VectorStoreError(f"delete of {len(batch)} vectors failed: {e}") from e

    def delete_document(self, tenant: str, doc_id: str) -> None:
        table = self._open()
        if table is None:
            return
        try:
            table.delete(f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)}")
        except Exception as e:
            raise VectorStoreError(f"delete of document vectors failed: {e}", doc_id=doc_id) from e

    def query(
        self,
        vector: list[float],
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        """Top-k rows of ``tenant`` (and ``filter``) that ``principals`` may read, by cosine.

        The tenant is always filtered; how depends on its share of an indexed table. A prefilter builds
        a mask over every row before the graph search, which cost ~35 ms a query at 1M rows; a tenant
        holding most rows is instead searched with a postfilter over enough candidates for k of its own
        rows, and prefiltered after all if fewer came back, so a result never misses rows it could have had.
        """
        table = self._open()
        if table is None:
            return []
        where = _where(tenant, filter, principals, acl_column=self._has_acl(table))
        # The acl is in ``where`` on both paths: the postfilter only returns readable rows, and falls back
        # to the prefilter when fewer than k of them came back, so top-k is filled with readable rows.
        share = self._tenant_share(table, tenant) if filter is None else 0.0
        if share >= _POSTFILTER_MIN_SHARE:
            fetch = math.ceil(k / share * _POSTFILTER_MARGIN) + 10
            hits = self._search(table, vector, k=fetch, where=where, prefilter=False)
            if len(hits) >= k:
                return hits[:k]
        return self._search(table, vector, k=k, where=where, prefilter=True)

    def _search(self, table: Any, vector: list[float], *, k: int, where: str, prefilter: bool) -> list[VectorHit]:
        result = (
            table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .nprobes(_NPROBES_ALL)
            .ef(ann_params(self._rows(table), k=k).ef)
            .where(where, prefilter=prefilter)
            .select([*_HIT_COLUMNS, "_distance"])  # named, or lance warns on every query
            .limit(k)
            .to_arrow()
        )
        return [VectorHit(record=_record(row), score=1.0 - float(row["_distance"])) for row in result.to_pylist()]

    def _rows(self, table: Any) -> int:
        """The table's row count, read at most every ``_ROWS_TTL_S``: it only sets the search's candidate list."""
        now = time.monotonic()
        if now - self._rows_at > _ROWS_TTL_S:
            self._rows_cached, self._rows_at = int(table.count_rows()), now
            self._indexed = self._has_ann(table)
            self._shares.clear()
        return self._rows_cached

    def _tenant_share(self, table: Any, tenant: str) -> float:
        """The tenant's share of the rows of an ANN-indexed table (0 without an index: a flat scan is
        cheapest with the prefilter), refreshed with the row count. Only speed depends on it."""
        rows = self._rows(table)
        if not self._indexed or rows == 0:
            return 0.0
        share = self._shares.get(tenant)  # one read: another search thread may clear the cache meanwhile
        if share is None:
            share = self._shares[tenant] = int(table.count_rows(f"tenant = {sql_quote(tenant)}")) / rows
        return share

    def keyword_query(
        self,
        text: str,
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        """Top-k chunks ``principals`` may read by BM25 over their text (lance's own full-text index), score = BM25."""
        table = self._open()
        if table is None:
            return []
        self._ensure_fts_index(table)  # tables made before hybrid search existed
        result = (
            table.search(text, query_type="fts")
            .where(_where(tenant, filter, principals, acl_column=self._has_acl(table)), prefilter=True)
            .select([*_HIT_COLUMNS, "_score"])
            .limit(k)
            .to_arrow()
        )
        return [VectorHit(record=_record(row), score=float(row["_score"])) for row in result.to_pylist()]

    def _scan(self, where: str | None, columns: list[str]) -> pa.Table:
        table = self._open()
        if table is None:
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        query = table.search().select(columns)
        if where:
            query = query.where(where)
        return query.limit(None).to_arrow()

    def document_ids(self, tenant: str, doc_id: str) -> list[str]:
        where = f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)}"
        ids: list[str] = self._scan(where, ["id"]).column("id").to_pylist()
        return ids

    def iter_ids(self, tenant: str | None = None) -> Iterator[StoredId]:
        where = f"tenant = {sql_quote(tenant)}" if tenant else None
        for row in self._scan(where, ["id", "tenant", "doc_id", "doc_version"]).to_pylist():
            yield StoredId.model_validate(row)

    def optimize(self) -> None:
        table = self._open()
        if table is None:
            return
        self._rewrite(f"optimize of {self.table_name}", lambda: self._optimize(table))

    def _optimize(self, table: Any) -> UpkeepPlan | None:
        """Housekeeping's pass over the table; returns what it did to the ANN index (None: no index yet).

        Before the ANN index exists: lancedb's whole-table optimize (compaction, old versions, the
        full-text index), then the first build on the compacted fragments — built before, the compaction
        that follows remaps it, and Lance rebuilds HNSW graphs while remapping, with less recall (1M
        rows: 0.919 built on 20 fragments then compacted, 1.000 built on the compacted table).

        Once it exists, every step costs what the new rows cost (pipelines.vectorstore.ann): a bounded
        compaction of small fragments, the new rows folded into a delta index, deltas merged with each
        other, a full rebuild only when the deltas have grown to half the base.
        """
        self._ensure_fts_index(table)
        if not self._has_acl(table):
            self._add_acl(table)
        if not self._has_ann(table):
            try:
                table.optimize(cleanup_older_than=timedelta(days=1))
            except Exception as e:  # lance raises plain RuntimeError/OSError on commit conflicts
                raise VectorStoreError(f"compacting {self.table_name} failed: {e}") from e
            self._ensure_ann_index(table, None)
            return None
        return self._upkeep(table)

    def _has_ann(self, table: Any) -> bool:
        return any(t.upper().startswith("IVF") for t in self._index_types(table))  # "IvfHnswSq", "IvfPq"

    def _dataset(self, table: Any) -> Any:
        """The table as a pylance dataset at its newest version: lancedb 0.40 has no delta-index or bounded
        compaction call of its own."""
        table.checkout_latest()
        return table.to_lance()

    def _ann_name(self, table: Any) -> str:
        return str(next(i.name for i in table.list_indices() if str(i.index_type).upper().startswith("IVF")))

    def index_shape(self) -> IndexShape | None:
        """The ANN index's base and delta sizes and the rows it does not cover yet (None: no index)."""
        table = self._open()
        if table is None or not self._has_ann(table):
            return None
        return self._shape(self._dataset(table), self._ann_name(table))

    def _shape(self, dataset: Any, name: str) -> IndexShape:
        stats = dataset.stats.index_stats(name)
        partitions = max((i.get("num_partitions", 1) for i in stats.get("indices", [])), default=1)
        return IndexShape(
            rows_per_delta=list(stats.get("num_indexed_rows_per_delta") or [stats.get("num_indexed_rows", 0)]),
            unindexed_rows=int(stats.get("num_unindexed_rows", 0)),
            partitions=partitions,
        )

    def _upkeep(self, table: Any) -> UpkeepPlan:
        name = self._ann_name(table)
        dataset = self._dataset(table)
        try:
            # Small fragments (each upsert writes one) are merged, a bounded number of rows per pass; a
            # fragment of fresh rows is not covered by the ANN index yet, so this remaps next to nothing.
            dataset.optimize.compact_files(max_source_rows=_COMPACT_MAX_SOURCE_ROWS)
            dataset = self._dataset(table)
            plan = plan_upkeep(self._shape(dataset, name))
            if plan.retrain:
                log.info("rebuilding the vector index of %s: %s", self.table_name, plan.reason)
                self._build_ann(table, table.count_rows())
            elif plan.merge_deltas:
                # lance merges the newest N delta indexes and the unindexed rows, leaving the base alone.
                dataset.optimize.optimize_indices(index_names=[name], num_indices_to_merge=plan.merge_deltas)
            elif plan.fold:
                dataset.optimize.optimize_indices(index_names=[name], num_indices_to_merge=0)
            # The full-text and scalar indexes fold new rows into their one index cheaply (full-text, 200k rows
            # + 2,000: 0.6 s); tables indexed before the scalar indexes existed get them here.
            self._ensure_scalar_indexes(table)
            others = [i.name for i in table.list_indices() if i.name != name]
            if others:
                self._dataset(table).optimize.optimize_indices(index_names=others)
            self._dataset(table).cleanup_old_versions(older_than=timedelta(days=1))
        except VectorStoreError:
            raise
        except Exception as e:  # lance raises plain RuntimeError/OSError on commit conflicts
            raise VectorStoreError(f"index upkeep of {self.table_name} failed: {e}") from e
        finally:
            table.checkout_latest()
        return plan

    def ensure_ann_index(self, *, min_rows: int | None = None) -> bool:
        """Build the IVF_HNSW_SQ vector index once the table has ``min_rows`` rows; True when one exists.

        Built here (housekeeping), not on writes: training takes seconds to minutes, and below the
        threshold a flat scan is both exact and fast enough.
        """
        table = self._open()
        if table is None:
            return False
        return self._rewrite(f"index build of {self.table_name}", lambda: self._ensure_ann_index(table, min_rows))

    def _ensure_ann_index(self, table: Any, min_rows: int | None) -> bool:
        if self._has_ann(table):
            return True
        rows = table.count_rows()
        if rows < (self.ann_index_min_rows if min_rows is None else min_rows) or rows < 256:
            return False
        self._build_ann(table, rows)
        self._ensure_scalar_indexes(table)
        return True

    def _ensure_scalar_indexes(self, table: Any) -> None:
        indexed = {c for i in table.list_indices() for c in i.columns}
        for column, kind in _SCALAR_INDEXES.items():
            if column not in indexed:
                try:
                    table.create_scalar_index(column, index_type=kind)
                except Exception as e:
                    raise VectorStoreError(f"building the {kind} index on {column} failed: {e}") from e

    def _build_ann(self, table: Any, rows: int) -> None:
        # IVF_HNSW_SQ, one graph per million rows (pipelines.vectorstore.ann has the measurements).
        params = ann_params(rows)
        log.info("building %s index over %d vectors (%d partitions)", INDEX_TYPE, rows, params.partitions)
        try:
            table.create_index(
                metric="cosine",
                vector_column_name="vector",
                index_type=INDEX_TYPE,
                num_partitions=params.partitions,
                replace=True,
            )
        except Exception as e:
            raise VectorStoreError(f"building the vector index failed: {e}") from e

    def count(self, tenant: str | None = None) -> int:
        table = self._open()
        if table is None:
            return 0
        n: int = table.count_rows(f"tenant = {sql_quote(tenant)}" if tenant else None)
        return n

    def erase_deleted(self) -> None:
        """Rewrite the table's files without its deleted rows and drop every older version.

        LanceDB deletes by marking rows: the text stays in the data file, and its compaction only
        rewrites fragments with more than 10 % deleted rows (lancedb exposes no threshold without
        pylance). A no-op update of every row moves them all into new fragments, which leaves the old
        ones fully deleted, so compaction drops them and the cleanup removes their files. It costs a
        rewrite of the table; a purge, which needs the deleted text gone from disk, can afford it.

        Raises:
            VectorStoreError: the rewrite failed (e.g. a concurrent write won); run it again.
        """
        self._rewrite(f"erasing deleted rows of {self.table_name}", self._erase_deleted)

    def _erase_deleted(self) -> None:
        import warnings

        import lancedb

        db = lancedb.connect(self.path, storage_options=self.storage_options)
        if self.table_name not in db.list_tables().tables:
            return
        table = db.open_table(self.table_name)
        try:
            table.update(where="true", values_sql={"id": "id"})
            with warnings.catch_warnings():
                # "cleanup_older_than=0 removes every version": exactly what erasing is for.
                warnings.simplefilter("ignore", UserWarning)
                table.optimize(cleanup_older_than=timedelta(0))
        except Exception as e:  # lance raises plain RuntimeError/OSError on commit or IO trouble
            raise VectorStoreError(f"rewriting {self.table_name} without its deleted rows failed: {e}") from e

    def drop(self) -> None:
        with self._lock, self._locks.exclusive(self._lock_name):
            if self.table_name in self._db.list_tables().tables:
                self._db.drop_table(self.table_name)
            # The next table is a new one: its full-text index, indexes and columns are checked again.
            self._table, self._fts_ready, self._acl_ready = None, False, False
