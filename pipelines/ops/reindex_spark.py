"""The Spark engine of reindex: chunk and embed on the executors, write the index's gold with Spark.

For corpora larger than one machine (``spark_master`` pointing at a cluster). The work per document
is the same ``plan_chunks`` the Celery step and the local engine run (via ``ingest.plan.plan_rows``), on
each executor's own Runtime (``pipelines.runtime.executor_runtime``: one loaded model per executor
process). The driver then makes the index's gold hold exactly the new rows of the rebuilt documents
(``spark_replace_chunks``, one commit that also deletes the chunks a document no longer has), and the
vector store is filled from gold by ``reconcile`` — the same repair code operators run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, TableSpec
from pipelines.runtime import Runtime, executor_runtime
from pipelines.settings import Settings
from pipelines.storage.location import spark_uri

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
    "acl",
]


class SparkBuild:
    """What the Spark build did (counted on the driver from the executors' plans)."""

    def __init__(self, documents: int, chunks: int, embedded: int, reused: int) -> None:
        self.documents, self.chunks, self.embedded, self.reused = documents, chunks, embedded, reused


def _planner(settings: Settings, index_json: str, cache_from: list[str]) -> Any:
    def plan(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.ingest.plan import plan_rows
        from pipelines.lakehouse.documents import now_utc

        rt = executor_runtime(settings)
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
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    from pipelines.lakehouse.spark import get_spark
    from pipelines.lakehouse.spark_writer import spark_replace_chunks

    spark = get_spark(rt.settings, app_name="doclake-reindex")
    keys = spark.createDataFrame(
        [(d["tenant"], d["doc_id"], d["version"]) for d in docs], "tenant string, doc_id string, version long"
    )
    silver = spark.read.format("delta").load(spark_uri(rt.lake.uri(DOCUMENTS))).select(*_SILVER_COLUMNS)
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
        # The documents built: those whose silver version was still the one asked for.
        built_docs = [(r["tenant"], r["doc_id"]) for r in plans.select("tenant", "doc_id").collect()]
        new_rows = plans.select(sf.explode("gold").alias("g")).select("g.*")
        spark_replace_chunks(rt.lake, index.gold, built_docs, new_rows)
    finally:
        plans.unpersist()
    built = SparkBuild(
        documents=int(summary["documents"]),
        chunks=int(summary["chunks"] or 0),
        embedded=int(summary["embedded"] or 0),
        reused=int(summary["reused"] or 0),
    )
    log.info("spark reindex of %s: %s", index.index_id, json.dumps(built.__dict__))
    return built
