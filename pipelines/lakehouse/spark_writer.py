"""The lakehouse writer's Spark engine: the same MERGEs as ``pipelines.lakehouse.writer``, from DataFrames.

Used where rows are too many to collect to one process (a large stream batch, a Spark reindex). The
predicates and update sets are the delta-rs writer's own, so both engines leave the same rows.
Every commit may carry a Delta transaction (app id, version): a re-run of the same batch skips it.
Each attempt holds the table's commit lock (shared), as a delta-rs commit does: a retention-0 vacuum
or a restore (exclusive) waits for it instead of deleting the files it is about to commit. Table
paths go through ``spark_uri`` (``s3://`` is ``s3a://`` to Hadoop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import DOCUMENTS, QUARANTINE, TableSpec
from pipelines.lakehouse.spark_commits import append_idempotent, retry_conflicts, txn
from pipelines.lakehouse.writer import DocKey, docs_predicate, version_updates
from pipelines.storage.location import spark_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SparkTxn", "spark_put_versions", "spark_quarantine", "spark_replace_chunks"]

# (txnAppId, txnVersion): the stream's id and the batch id, or a reindex build's id and pass.
SparkTxn = tuple[str, int]


def _merge(
    lake: Lake, spec: TableSpec, source: DataFrame, *, txn_id: SparkTxn | None, build: Callable[[Any], Any]
) -> None:
    from delta.tables import DeltaTable

    spark = source.sparkSession
    path = spark_uri(lake.uri(spec))

    def run() -> None:
        with lake.commit_lock(spec):
            merger = DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), spec.merge_on)
            if txn_id is None:
                build(merger).execute()
                return
            with txn(spark, *txn_id):
                build(merger).execute()

    retry_conflicts(run, what=f"{spec.name} MERGE")


def spark_put_versions(lake: Lake, source: DataFrame, *, txn_id: SparkTxn | None = None) -> None:
    """``put_versions`` through Spark: ``source`` has silver's columns, one row per document."""
    updates = version_updates()
    _merge(
        lake,
        DOCUMENTS,
        source.select(*DOCUMENTS.schema.names),
        txn_id=txn_id,
        build=lambda m: m.whenMatchedUpdate(condition="s.version > t.version", set=updates).whenNotMatchedInsertAll(),
    )
    lake.table(DOCUMENTS)  # refresh the cached delta-rs handle past Spark's commit


def spark_replace_chunks(
    lake: Lake, gold: TableSpec, docs: Iterable[DocKey], source: DataFrame, *, txn_id: SparkTxn | None = None
) -> None:
    """``replace_chunks`` through Spark: gold holds exactly ``source``'s rows for ``docs``."""
    stale = docs_predicate(docs)
    _merge(
        lake,
        gold,
        source.select(*gold.schema.names),
        txn_id=txn_id,
        build=lambda m: m.whenMatchedUpdateAll().whenNotMatchedInsertAll().whenNotMatchedBySourceDelete(stale),
    )
    lake.table(gold)


def spark_quarantine(lake: Lake, source: DataFrame, *, txn_id: SparkTxn) -> None:
    """``quarantine`` through Spark, once per transaction id."""
    append_idempotent(
        source.select(*QUARANTINE.schema.names),
        spark_uri(lake.uri(QUARANTINE)),
        app_id=txn_id[0],
        version=txn_id[1],
        lock=lambda: lake.commit_lock(QUARANTINE),
    )
