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
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.ids import MetadataValue
from pipelines.errors import VectorStoreError
from pipelines.lakehouse.lake import sql_quote
from pipelines.retry import retry
from pipelines.storage.locks import Locks, NoLocks
from pipelines.vectorstore.base import StoredId, VectorHit, metadata_tags

__all__ = ["LanceVectorStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_TABLE = "chunks"
# The ANN index searched with these probes and an exact re-rank of refine_factor * k candidates: recall@10 ≥ 0.95
# against brute force (measured in bench/search_scale.py); without an index they are ignored.
_NPROBES = 20
_REFINE_FACTOR = 10
# HNSW candidate list; it must be at least k * refine_factor. Lance's default gave recall@10 0.943 on 20k
# clustered vectors and 400 gave 0.995, but housekeeping's optimize (compaction, which remaps the index)
# cost the graph recall: 200k rows, 2 partitions, ef 400: 0.944 before optimize, 0.77-0.87 after (1M:
# 0.517). After optimize ef 1000 gave 0.979 and 2000 gave 0.998 at the same latency (42 ms per query).
_HNSW_EF = 2000


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
        ]
    )


def _in_list(values: list[str]) -> str:
    return "(" + ", ".join(sql_quote(v) for v in values) + ")"


def _where(tenant: str, filter: dict[str, MetadataValue] | None) -> str:
    where = f"tenant = {sql_quote(tenant)}"
    tags = metadata_tags(filter or {})
    if tags:
        where += f" AND array_has_all(meta_tags, [{', '.join(sql_quote(t) for t in tags)}])"
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
        return table

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
        self, vector: list[float], *, k: int, tenant: str, filter: dict[str, MetadataValue] | None = None
    ) -> list[VectorHit]:
        table = self._open()
        if table is None:
            return []
        where = _where(tenant, filter)
        result = (
            table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .nprobes(_NPROBES)
            .refine_factor(_REFINE_FACTOR)
            .ef(max(_HNSW_EF, k * _REFINE_FACTOR))
            .where(where, prefilter=True)
            .limit(k)
            .to_arrow()
        )
        return [VectorHit(record=_record(row), score=1.0 - float(row["_distance"])) for row in result.to_pylist()]

    def keyword_query(
        self, text: str, *, k: int, tenant: str, filter: dict[str, MetadataValue] | None = None
    ) -> list[VectorHit]:
        """Top-k chunks by BM25 over their text (lance's own full-text index), score = BM25."""
        table = self._open()
        if table is None:
            return []
        self._ensure_fts_index(table)  # tables made before hybrid search existed
        result = table.search(text, query_type="fts").where(_where(tenant, filter), prefilter=True).limit(k).to_arrow()
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

    def _optimize(self, table: Any) -> None:
        # Each merge_insert adds a fragment; compaction keeps search fast. Old files are kept a day
        # because another process may still be reading the previous version. optimize also folds
        # new rows into the existing indices (full-text and ANN).
        self._ensure_fts_index(table)
        try:
            table.optimize(cleanup_older_than=timedelta(days=1))
        except Exception as e:  # lance raises plain RuntimeError/OSError on commit conflicts
            raise VectorStoreError(f"compacting {self.table_name} failed: {e}") from e
        # The ANN index is first built after compaction, on the compacted fragments: built before,
        # the compaction that follows remaps it, and Lance rebuilds the HNSW graphs while remapping,
        # with less recall. 1M rows, ef 2000 (bench/search_scale.py): built on 20 fragments and then
        # compacted 0.919; built on the compacted table 1.000.
        self._ensure_ann_index(table, None)

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
        if any(t.upper().startswith("IVF") for t in self._index_types(table)):  # lance says "IvfHnswSq", "IvfPq"
            return True
        rows = table.count_rows()
        if rows < (self.ann_index_min_rows if min_rows is None else min_rows) or rows < 256:
            return False
        # IVF_HNSW_SQ, not IVF_PQ: on clustered synthetic data (bench/search_scale.py) PQ with nprobes 20 /
        # refine 10 reached recall@10 0.68 (0.84 with refine 50), HNSW over scalar-quantised vectors
        # 1.0 at the same latency, and it built 3 times faster. Few partitions: each holds a graph.
        partitions = max(1, rows // 100_000)
        log.info("building IVF_HNSW_SQ index over %d vectors (%d partitions)", rows, partitions)
        try:
            table.create_index(
                metric="cosine",
                vector_column_name="vector",
                index_type="IVF_HNSW_SQ",
                num_partitions=partitions,
                replace=True,
            )
        except Exception as e:
            raise VectorStoreError(f"building the vector index failed: {e}") from e
        return True

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
            self._table = None
