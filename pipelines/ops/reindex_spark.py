"""The Spark engine of reindex: chunk and embed on the executors, MERGE the index's gold with Spark.

For corpora larger than one machine (``spark_master`` pointing at a cluster). The work per document
is the same ``plan_chunks`` the Celery step and the local engine run (via ``ingest._plan_row``), on
each executor's own Runtime (one loaded model per executor process). The driver then writes the
index's gold table in one Spark MERGE that also deletes the chunks a rebuilt document no longer
has, and the vector store is filled from gold by ``reconcile`` — the same repair code operators run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, TableSpec
from pipelines.runtime import Runtime
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["spark_build"]

log = logging.getLogger(__name__)

_GOLD_STRUCT = pa.struct([pa.field(f.name, f.type) for f in CHUNKS.schema])
_PLAN_SCHEMA = pa.schema(
    [
        pa.field("tenant", pa.string()),
        pa.field("doc_id", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("embedded", pa.int64()),
        pa.field("reused", pa.int64()),
        pa.field("gold", pa.list_(_GOLD_STRUCT)),
    ]
)
_SILVER_COLUMNS = [
    "tenant",
    "doc_id",
    "version",
    "status",
    "filename",
    "format",
    "mime",
    "text",
    "elements_json",
    "metadata_json",
]


class SparkBuild:
    """What the Spark build did (counted on the driver from the executors' plans)."""

    def __init__(self, documents: int, chunks: int, embedded: int, reused: int) -> None:
        self.documents, self.chunks, self.embedded, self.reused = documents, chunks, embedded, reused


def _planner(settings: Settings, index_json: str, cache_from: list[str]) -> Any:
    def plan(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.ingest.plan import plan_rows
        from pipelines.lakehouse.documents import now_utc
        from pipelines.stream.batch import _executor_runtime

        rt = _executor_runtime(settings)
        index = IndexSpec.model_validate_json(index_json)
        golds = tuple(TableSpec(name, CHUNKS.schema, CHUNKS.key) for name in cache_from)
        for batch in batches:
            out = []
            for row in batch.to_pylist():
                p = plan_rows(rt, row["tenant"], [row], index, cache_from=golds)[row["doc_id"]]
                stamp = now_utc()
                out.append(
                    {
                        "tenant": row["tenant"],
                        "doc_id": row["doc_id"],
                        "version": row["version"],
                        "embedded": p.embedded,
                        "reused": p.reused,
                        "gold": [{**r.row(), "updated_at": stamp} for r in p.rows],
                    }
                )
            yield pa.RecordBatch.from_pylist(out, schema=_PLAN_SCHEMA)

    return plan


def spark_build(rt: Runtime, index: IndexSpec, docs: list[dict[str, Any]]) -> SparkBuild:
    """Rebuild ``docs`` (tenant, doc_id, version rows of silver) into ``index``'s gold with Spark."""
    if not docs:
        return SparkBuild(0, 0, 0, 0)
    from delta.tables import DeltaTable
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    from pipelines.lakehouse.spark import get_spark
    from pipelines.lakehouse.spark_commits import retry_conflicts

    spark = get_spark(rt.settings, app_name="doclake-reindex")
    keys = spark.createDataFrame(
        [(d["tenant"], d["doc_id"], d["version"]) for d in docs], "tenant string, doc_id string, version long"
    )
    silver = spark.read.format("delta").load(rt.lake.uri(DOCUMENTS)).select(*_SILVER_COLUMNS)
    wanted = silver.join(keys, ["tenant", "doc_id", "version"], "inner")
    cache_from = [i.gold.name for i in rt.indexes() if i.model_id == index.model_id and i.index_id != index.index_id]
    partitions = max(1, min(len(docs), spark.sparkContext.defaultParallelism))
    plans = (
        wanted.repartition(partitions, "tenant", "doc_id")
        .mapInArrow(_planner(rt.settings, index.model_dump_json(), cache_from), from_arrow_schema(_PLAN_SCHEMA))
        .persist()
    )
    try:
        summary = plans.select(
            sf.count("*").alias("documents"),
            sf.sum(sf.size("gold")).alias("chunks"),
            sf.sum("embedded").alias("embedded"),
            sf.sum("reused").alias("reused"),
        ).first()
        assert summary is not None
        new_rows = plans.select(sf.explode("gold").alias("g")).select("g.*").withColumn("_drop", sf.lit(False))
        _merge(spark, DeltaTable, rt.lake.uri(index.gold), plans, new_rows, retry_conflicts)
    finally:
        plans.unpersist()
    rt.lake.table(index.gold)  # refresh the delta-rs handle past Spark's commit
    built = SparkBuild(
        documents=int(summary["documents"]),
        chunks=int(summary["chunks"] or 0),
        embedded=int(summary["embedded"] or 0),
        reused=int(summary["reused"] or 0),
    )
    log.info("spark reindex of %s: %s", index.index_id, json.dumps(built.__dict__))
    return built


def _merge(spark: Any, delta_table: Any, path: str, plans: DataFrame, new_rows: DataFrame, retry: Any) -> None:
    from pyspark.sql import functions as sf

    target = spark.read.format("delta").load(path)
    rebuilt = plans.select("tenant", "doc_id")
    # Chunks a rebuilt document no longer has: deleted in the same commit as the new rows land.
    stale = (
        target.join(rebuilt, ["tenant", "doc_id"], "left_semi")
        .join(new_rows.select("tenant", "chunk_id"), ["tenant", "chunk_id"], "left_anti")
        .withColumn("_drop", sf.lit(True))
    )
    source = new_rows.unionByName(stale)

    def run() -> None:
        (
            delta_table.forPath(spark, path)
            .alias("t")
            .merge(source.alias("s"), "t.tenant = s.tenant AND t.chunk_id = s.chunk_id")
            .whenMatchedDelete(condition="s._drop")
            .whenMatchedUpdate(set={f.name: f"s.{f.name}" for f in CHUNKS.schema})
            .whenNotMatchedInsert(condition="NOT s._drop", values={f.name: f"s.{f.name}" for f in CHUNKS.schema})
            .execute()
        )

    retry(run, what=f"{path} reindex MERGE")
