"""The two engines of a micro-batch: where its rows live and how they reach the lakehouse writer.

``process_batch`` runs the same steps for every batch (validate → plan → quarantine → gold → silver);
an engine carries them out on its rows:

- ``DriverEngine``: a small batch, collected to the driver, validated and planned in this process and
  committed with delta-rs (``pipelines.lakehouse.writer``). A Spark MERGE over a few rows costs
  seconds of job scheduling; a delta-rs commit, milliseconds.
- ``SparkEngine``: a large batch, validated and planned on the executors, committed with Spark
  (``pipelines.lakehouse.spark_writer``, built from the writer's own predicates).

Both run the same validation (``validate``), planning (``plan.plan_documents``) and writer rules, and
every commit carries the batch's Delta transaction (app id, batch id): a replayed batch skips what
its first run committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from pipelines.contracts.rows import SilverRow
from pipelines.lakehouse.documents import now_utc
from pipelines.lakehouse.lake import Txn
from pipelines.lakehouse.schemas import TableSpec
from pipelines.lakehouse.spark_writer import spark_put_versions, spark_quarantine, spark_replace_chunks
from pipelines.lakehouse.writer import DocKey, put_versions, quarantine, replace_chunks
from pipelines.runtime import Runtime, executor_runtime
from pipelines.settings import Settings
from pipelines.stream.plan import PLAN_SCHEMA, plan_documents
from pipelines.stream.validate import VALIDATED_SCHEMA, group_events, validate_batches, validated_row

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["BatchEngine", "DriverEngine", "SparkEngine"]


class BatchEngine(Protocol):
    """One micro-batch's rows and the writer calls that commit them (each with the batch's Delta txn)."""

    def validate(self) -> int:
        """Validate every raw payload; returns how many events the batch has."""
        ...

    def plan(self) -> list[dict[str, Any]]:
        """Group the valid events per document and plan each one (``plan_documents``).

        Returns a summary per plan row (event_id, tenant, doc_id, version, status, action), without
        the gold rows, which stay with the engine.
        """
        ...

    def quarantine(self, *, source: str) -> int:
        """Keep the invalid events and the ones planning rejected in bronze.quarantine; returns how many."""
        ...

    def replace_chunks(self, gold: TableSpec, docs: list[DocKey]) -> None:
        """Make ``gold`` hold exactly the applied plans' gold rows for ``docs`` (the applied documents)."""
        ...

    def put_versions(self) -> None:
        """Make the applied plans' silver rows their documents' current versions."""
        ...

    def oldest_event(self) -> datetime | None:
        """The timestamp of the batch's oldest valid event (for the freshness lag)."""
        ...

    def close(self) -> None:
        """Release what the engine holds (Spark's cached DataFrames)."""
        ...


class DriverEngine:
    """A small batch in the driver's memory, committed with delta-rs."""

    def __init__(self, rt: Runtime, payloads: list[str], *, txn: Txn) -> None:
        self._rt, self._payloads, self._txn = rt, payloads, txn
        self._validated: list[dict[str, Any]] = []
        self._plans: list[dict[str, Any]] = []

    def _applied(self) -> list[dict[str, Any]]:
        return [p for p in self._plans if p["action"] == "apply"]

    def validate(self) -> int:
        self._validated = [validated_row(payload) for payload in self._payloads]
        return len(self._validated)

    def plan(self) -> list[dict[str, Any]]:
        self._plans = plan_documents(self._rt, group_events(self._validated))
        return [{k: v for k, v in p.items() if k != "gold"} for p in self._plans]

    def quarantine(self, *, source: str) -> int:
        now = now_utc()
        rejected = [r for r in self._validated if r["error"] is not None]
        rejected += [{**p, "error": p["plan_error"]} for p in self._plans if p["action"] == "error"]
        rows = [{**r, "source": source, "quarantined_at": now} for r in rejected]
        quarantine(self._rt.lake, rows, txn=self._txn)
        return len(rows)

    def replace_chunks(self, gold: TableSpec, docs: list[DocKey]) -> None:
        rows = [g for p in self._applied() for g in p["gold"] or []]
        replace_chunks(self._rt.lake, gold, docs, rows, txn=self._txn)

    def put_versions(self) -> None:
        put_versions(self._rt.lake, [SilverRow.model_validate(p) for p in self._applied()], txn=self._txn)

    def oldest_event(self) -> datetime | None:
        times = [r["ts"] for r in self._validated if r["ts"] is not None]
        return min(times) if times else None

    def close(self) -> None:
        return None


def _planner(settings: Settings) -> Any:
    """The ``mapInArrow`` function planning document groups on an executor (its own Runtime, reused)."""

    def plan_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rt = executor_runtime(settings)
        for batch in batches:
            rows = plan_documents(rt, batch.column("events").to_pylist())
            yield pa.RecordBatch.from_pylist(rows, schema=PLAN_SCHEMA)

    return plan_batches


class SparkEngine:
    """A large batch as DataFrames: validated and planned on the executors, committed with Spark."""

    def __init__(self, rt: Runtime, df: DataFrame, *, txn: Txn) -> None:
        self._rt, self._df, self._txn = rt, df, txn
        self._validated: DataFrame | None = None
        self._plans: DataFrame | None = None

    @property
    def _valid(self) -> DataFrame:
        assert self._validated is not None, "validate() first"
        return self._validated

    @property
    def _planned(self) -> DataFrame:
        assert self._plans is not None, "plan() first"
        return self._plans

    def _applied(self) -> DataFrame:
        from pyspark.sql import functions as sf

        return self._planned.filter(sf.col("action") == "apply")

    def validate(self) -> int:
        from pyspark.sql import functions as sf
        from pyspark.sql.pandas.types import from_arrow_schema

        # seq records arrival order (Kafka offset / table order within the batch): among events with
        # the same version, the first to arrive is the one applied; later ones are duplicates.
        self._validated = (
            self._df.select("payload")
            .mapInArrow(validate_batches, from_arrow_schema(VALIDATED_SCHEMA))
            .withColumn("seq", sf.monotonically_increasing_id())
            .persist()
        )
        return self._validated.count()

    def plan(self) -> list[dict[str, Any]]:
        from pyspark.sql import functions as sf
        from pyspark.sql.pandas.types import from_arrow_schema

        # All of a document's events go to one planner call, which folds them in version order.
        per_doc = (
            self._valid.filter(sf.col("error").isNull())
            .groupBy("tenant", "doc_id")
            .agg(sf.collect_list(sf.struct("seq", "event_json", "payload")).alias("events"))
        )
        # One partition: a batch is small, and each executor process that plans loads the model once.
        self._plans = (
            per_doc.coalesce(1).mapInArrow(_planner(self._rt.settings), from_arrow_schema(PLAN_SCHEMA)).persist()
        )
        summary = self._plans.select("event_id", "status", "action", "tenant", "doc_id", "version").collect()
        return [r.asDict() for r in summary]

    def quarantine(self, *, source: str) -> int:
        from pyspark.sql import functions as sf

        columns = ("event_id", "tenant", "doc_id", "payload")
        rejected = (
            self._valid.filter(sf.col("error").isNotNull())
            .select(*columns, "error")
            .unionByName(
                self._planned.filter(sf.col("action") == "error").select(*columns, sf.col("plan_error").alias("error"))
            )
            .withColumn("source", sf.lit(source))
            .withColumn("quarantined_at", sf.current_timestamp())
        )
        count = rejected.count()
        if count:
            spark_quarantine(self._rt.lake, rejected, txn_id=self._txn)
        return count

    def replace_chunks(self, gold: TableSpec, docs: list[DocKey]) -> None:
        from pyspark.sql import functions as sf

        rows = self._applied().select(sf.explode("gold").alias("g")).select("g.*")
        spark_replace_chunks(self._rt.lake, gold, docs, rows, txn_id=self._txn)

    def put_versions(self) -> None:
        spark_put_versions(self._rt.lake, self._applied(), txn_id=self._txn)

    def oldest_event(self) -> datetime | None:
        from pyspark.sql import functions as sf

        oldest = self._valid.agg(sf.min("ts")).first()
        return oldest[0] if oldest is not None else None

    def close(self) -> None:
        for frame in (self._validated, self._plans):
            if frame is not None:
                frame.unpersist()
