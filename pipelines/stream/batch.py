"""The micro-batch (foreachBatch) of the update stream.

validate (executors) → quarantine the invalid, with the error → keep the latest version per document
→ plan each winner on the executors (newer than silver? chunk + embed what gold lacks) → delete
vectors of deleted documents → MERGE gold → MERGE silver → mirror to the vector store.

Two engines run these steps. A small batch (the usual case: up to ``stream_driver_max_events``) is
collected to the driver and committed with delta-rs, because a Spark MERGE over a tiny table costs
seconds of job scheduling. A large batch validates and plans on the executors and commits with Spark
MERGEs. Both call the same validation, planning (``plan_update``) and mirroring functions and use
the same MERGE conditions.

Crash safety: the source replays a batch with the same id after a crash. Every Delta write carries
(txnAppId, txnVersion=batch id) — Spark's writer options or delta-rs's app transactions record the
same Delta ``txn`` action — so a re-run skips what the first run committed; a winner whose
version silver already holds is only re-mirrored (upsert by chunk id, idempotent). Each chunk ends up
exactly once in gold (MERGE key) and in the vector store (upsert key).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel, Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.updates import DocumentUpdate
from pipelines.errors import DocLakeError
from pipelines.ingest.mirror import Mirror
from pipelines.ingest.runner import run_step
from pipelines.lakehouse.documents import get_document, rows_table
from pipelines.lakehouse.lake import Txn, sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, QUARANTINE
from pipelines.lakehouse.spark_commits import append_idempotent, retry_conflicts, txn
from pipelines.observability import metrics
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.stream.changes import parse_event
from pipelines.stream.plan import PLAN_SCHEMA, plan_update

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["VALIDATED_SCHEMA", "BatchResult", "process_batch"]

log = logging.getLogger(__name__)

# Fault injection for the crash drill: hold the batch after this point so a test can SIGKILL it there.
HOLD_ENV = "DOCLAKE_STREAM_DRILL_HOLD"

VALIDATED_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("error", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("tenant", pa.string()),
        pa.field("doc_id", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("event_json", pa.string()),
    ]
)


class BatchResult(BaseModel):
    batch_id: int
    events: int = 0
    quarantined: int = 0
    applied: int = 0
    mirrored: int = 0
    skipped: int = 0
    seconds: dict[str, float] = Field(default_factory=dict, description="Wall time of each phase, for the log.")


class _PhaseClock:
    """Records the seconds since the previous lap under each phase's name."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into, self._last = into, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self._into[phase] = round(now - self._last, 3)
        self._last = now


_RUNTIMES: dict[str, Runtime] = {}


def _executor_runtime(settings: Settings) -> Runtime:
    """One Runtime (and so one loaded model) per executor Python process, reused across batches."""
    key = settings.model_dump_json()
    rt = _RUNTIMES.get(key)
    if rt is None:
        rt = _RUNTIMES[key] = Runtime.from_settings(settings)
    return rt


def _validate_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows: list[dict[str, Any]] = []
        for payload in batch.column("payload").to_pylist():
            parsed = parse_event(payload)
            event = parsed.event
            rows.append(
                {
                    "event_id": parsed.event_id,
                    "error": parsed.error,
                    "payload": payload,
                    "tenant": event.tenant if event else None,
                    "doc_id": event.doc_id if event else None,
                    "version": event.version if event else None,
                    "ts": event.ts if event else None,
                    "event_json": event.model_dump_json() if event else None,
                }
            )
        yield pa.RecordBatch.from_pylist(rows, schema=VALIDATED_SCHEMA)


def _plan_groups(rt: Runtime, groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """PLAN_SCHEMA rows for documents' event groups (each a list of ``{seq, event_json, payload}``)."""
    rows: list[dict[str, Any]] = []
    for group in groups:
        payloads = {}
        events = []
        for item in sorted(group, key=lambda item: item["seq"]):
            event = DocumentUpdate.model_validate_json(item["event_json"])
            events.append(event)
            payloads[event.event_id] = item["payload"]
        newest = max(events, key=lambda e: (e.version, e.ts, e.event_id))
        key = {"tenant": newest.tenant, "doc_id": newest.doc_id}
        try:
            plan = plan_update(rt, events)
        except DocLakeError as e:
            if e.retryable:
                raise  # fail the batch: it is re-run, nothing was committed
            rows.extend(
                {
                    **key,
                    "event_id": ev.event_id,
                    "op": ev.op.value,
                    "version": ev.version,
                    "action": "error",
                    "plan_error": e.describe(),
                    "payload": payloads[ev.event_id],
                }
                for ev in events
            )
            continue
        rows.append(
            {
                **plan.silver,
                **key,
                "event_id": newest.event_id,
                "op": newest.op.value,
                "version": plan.version,
                "action": plan.action,
                "payload": payloads[newest.event_id],
                "gold": plan.gold,
            }
        )
        by_id = {ev.event_id: ev for ev in events}
        rows.extend(
            {
                **key,
                "event_id": event_id,
                "op": by_id[event_id].op.value,
                "version": by_id[event_id].version,
                "action": "error",
                "plan_error": error,
                "payload": payloads[event_id],
            }
            for event_id, error in plan.rejected
        )
    return rows


def _planner(settings: Settings) -> Any:
    def plan_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rt = _executor_runtime(settings)
        for batch in batches:
            rows = _plan_groups(rt, batch.column("events").to_pylist())
            yield pa.RecordBatch.from_pylist(rows, schema=PLAN_SCHEMA)

    return plan_batches


def _hold(settings: Settings, point: str) -> None:
    if os.environ.get(HOLD_ENV) != point:
        return
    settings.stream_dir.mkdir(parents=True, exist_ok=True)
    (settings.stream_dir / f"held-{point}").write_text(str(os.getpid()))
    log.warning("drill: holding the batch after %s until killed", point)
    while True:
        time.sleep(1)


def process_batch(
    rt: Runtime,
    df: DataFrame,
    batch_id: int,
    *,
    source: str,
    app_id: str,
    driver_max_events: int | None = None,
) -> BatchResult:
    """Apply one micro-batch of raw events (a DataFrame with a string column ``payload``).

    A batch of at most ``driver_max_events`` (default: the setting ``stream_driver_max_events``)
    is applied on the driver with delta-rs; a larger one with Spark jobs and Spark MERGEs.
    """
    limit = rt.settings.stream_driver_max_events if driver_max_events is None else driver_max_events
    result = BatchResult(batch_id=batch_id)
    clock = _PhaseClock(result.seconds)
    if limit > 0:
        # One small Spark job tells whether the batch is small, and if so hands over the whole of it.
        payloads = [row[0] for row in df.select("payload").limit(limit + 1).collect()]
        clock.lap("collect")
        if len(payloads) <= limit:
            _apply_on_driver(rt, payloads, result, clock, source=source, txn=(app_id, batch_id))
            log.info("stream batch %s", result.model_dump_json())
            return result
    _apply_with_spark(rt, df, result, clock, source=source, app_id=app_id)
    log.info("stream batch %s", result.model_dump_json())
    return result


def _apply_on_driver(
    rt: Runtime, payloads: list[str], result: BatchResult, clock: _PhaseClock, *, source: str, txn: Txn
) -> None:
    """The small-batch path: the same validation, planning and MERGEs as Spark's, as delta-rs commits.

    Tiny Spark MERGEs cost seconds each in job scheduling; delta-rs commits of a few rows cost
    milliseconds. Exactly-once is kept the same way: each commit carries the Delta application
    transaction (app id, batch id) and a replay skips a table that already holds it.
    """
    batch = pa.RecordBatch.from_pydict({"payload": payloads}, schema=pa.schema([pa.field("payload", pa.string())]))
    validated = [row for out in _validate_batches([batch]) for row in out.to_pylist()]
    result.events = len(validated)
    clock.lap("validate")
    if not validated:
        return
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for seq, row in enumerate(validated):
        if row["error"] is None:
            item = {"seq": seq, "event_json": row["event_json"], "payload": row["payload"]}
            groups.setdefault((row["tenant"], row["doc_id"]), []).append(item)
    plans = _plan_groups(rt, list(groups.values()))
    clock.lap("plan")

    now = datetime.now(UTC)
    rejected = [{**r, "error": r["error"]} for r in validated if r["error"] is not None]
    rejected += [{**p, "error": p["plan_error"]} for p in plans if p["action"] == "error"]
    quarantine = [{**r, "source": f"stream:{source}", "quarantined_at": now} for r in rejected]
    result.quarantined = len(quarantine)
    if quarantine:
        rt.lake.append(QUARANTINE, rows_table(QUARANTINE, quarantine), txn=txn)
    clock.lap("quarantine")

    applied = [p for p in plans if p["action"] == "apply"]
    _unsearch_deleted(rt, applied)
    if applied:
        gold = rt.index(fresh=True).gold
        chunks = rows_table(gold, [g for p in applied for g in p["gold"] or []])
        stale = _stale_chunks(applied)
        rt.lake.merge(
            gold,
            chunks,
            predicate="t.tenant = s.tenant AND t.chunk_id = s.chunk_id",
            build=lambda m: (
                m.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(stale)
            ),
            txn=txn,
        )
        clock.lap("gold_merge")
        _hold(rt.settings, "gold")
        rt.lake.merge(
            DOCUMENTS,
            rows_table(DOCUMENTS, applied),
            predicate="t.tenant = s.tenant AND t.doc_id = s.doc_id",
            build=lambda m: m.when_matched_update(
                _silver_updates(), predicate="s.version > t.version"
            ).when_not_matched_insert_all(),
            txn=txn,
        )
        clock.lap("silver_merge")
    times = [r["ts"] for r in validated if r["ts"] is not None]
    _finish(rt, result, clock, plans, oldest=min(times) if times else None, source=source)


def _apply_with_spark(
    rt: Runtime, df: DataFrame, result: BatchResult, clock: _PhaseClock, *, source: str, app_id: str
) -> None:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = df.sparkSession
    batch_id = result.batch_id
    # seq records arrival order (Kafka offset / table order within the batch): among events with the
    # same version, the first to arrive is the one applied; later ones are duplicates.
    validated = (
        df.select("payload")
        .mapInArrow(_validate_batches, from_arrow_schema(VALIDATED_SCHEMA))
        .withColumn("seq", sf.monotonically_increasing_id())
        .persist()
    )
    plans = None
    try:
        result.events = validated.count()
        clock.lap("validate")
        if result.events == 0:
            return
        # All of a document's events go to one planner call, which folds them in version order.
        per_doc = (
            validated.filter(sf.col("error").isNull())
            .groupBy("tenant", "doc_id")
            .agg(sf.collect_list(sf.struct("seq", "event_json", "payload")).alias("events"))
        )
        # One partition: a batch is small, and each executor process that plans loads the model once.
        plans = per_doc.coalesce(1).mapInArrow(_planner(rt.settings), from_arrow_schema(PLAN_SCHEMA)).persist()
        summary = plans.select("event_id", "status", "action", "tenant", "doc_id", "version").collect()
        clock.lap("plan")

        quarantine = (
            validated.filter(sf.col("error").isNotNull())
            .select("event_id", "tenant", "doc_id", "payload", "error")
            .unionByName(
                plans.filter(sf.col("action") == "error").select(
                    "event_id", "tenant", "doc_id", "payload", sf.col("plan_error").alias("error")
                )
            )
        )
        quarantine = quarantine.select(
            "event_id",
            sf.lit(f"stream:{source}").alias("source"),
            "tenant",
            "doc_id",
            "payload",
            "error",
            sf.current_timestamp().alias("quarantined_at"),
        )
        result.quarantined = quarantine.count()
        if result.quarantined:
            append_idempotent(quarantine, rt.lake.uri(QUARANTINE), app_id=app_id, version=batch_id)
        clock.lap("quarantine")

        applied = [r for r in summary if r["action"] == "apply"]
        _unsearch_deleted(rt, applied)
        if applied:
            gold_uri = rt.lake.uri(rt.index(fresh=True).gold)
            _merge_gold(spark, DeltaTable, plans, gold_uri, applied, app_id=app_id, batch_id=batch_id)
            clock.lap("gold_merge")
            _hold(rt.settings, "gold")
            _merge_silver(spark, DeltaTable, plans, rt.lake.uri(DOCUMENTS), app_id=app_id, batch_id=batch_id)
            clock.lap("silver_merge")
            rt.lake.table(DOCUMENTS)  # refresh the cached delta-rs handle past Spark's commit
        oldest = validated.agg(sf.min("ts")).first()
        _finish(rt, result, clock, summary, oldest=oldest[0] if oldest is not None else None, source=source)
    finally:
        validated.unpersist()
        if plans is not None:
            plans.unpersist()


def _unsearch_deleted(rt: Runtime, applied: list[Any]) -> None:
    # Deleted documents leave search first: the vector store is what users see.
    for r in applied:
        if r["status"] == DocumentStatus.deleted:
            rt.vectors.delete_document(r["tenant"], r["doc_id"])


def _finish(
    rt: Runtime, result: BatchResult, clock: _PhaseClock, plans: list[Any], *, oldest: datetime | None, source: str
) -> None:
    """After the commits: count the outcome, mirror to the vector store, record the lag."""
    result.applied = sum(1 for r in plans if r["action"] == "apply")
    result.skipped = sum(1 for r in plans if r["action"] == "skip")
    result.mirrored = _mirror(rt, [r for r in plans if r["action"] in ("apply", "mirror")])
    clock.lap("mirror")
    if oldest is not None:
        # Lag = how long the oldest event of this batch waited until it was searchable.
        lag = (datetime.now(UTC) - oldest.astimezone(UTC)).total_seconds()
        metrics.record_stream_lag(max(0.0, lag), stream=source)


def _stale_chunks(applied: list[Any]) -> str:
    """Gold rows of these documents: the ones the new versions no longer have are deleted."""
    by_tenant: dict[str, list[str]] = {}
    for r in applied:
        by_tenant.setdefault(r["tenant"], []).append(r["doc_id"])
    return " OR ".join(
        f"(t.tenant = {sql_quote(tenant)} AND t.doc_id IN ({', '.join(sql_quote(d) for d in sorted(set(docs)))}))"
        for tenant, docs in sorted(by_tenant.items())
    )


def _silver_updates() -> dict[str, str]:
    """A newer version replaces every silver column but ``created_at``."""
    return {c: f"s.{c}" for c in DOCUMENTS.schema.names if c != "created_at"}


def _merge_gold(
    spark: Any, delta_table: Any, plans: DataFrame, path: str, applied: list[Any], *, app_id: str, batch_id: int
) -> None:
    from pyspark.sql import functions as sf

    source = plans.filter(sf.col("action") == "apply").select(sf.explode("gold").alias("g")).select("g.*")
    stale = _stale_chunks(applied)

    def run() -> None:
        with txn(spark, app_id, batch_id):
            (
                delta_table.forPath(spark, path)
                .alias("t")
                .merge(source.alias("s"), "t.tenant = s.tenant AND t.chunk_id = s.chunk_id")
                .whenMatchedUpdateAll()
                .whenNotMatchedInsertAll()
                .whenNotMatchedBySourceDelete(stale)
                .execute()
            )

    retry_conflicts(run, what="gold.chunks MERGE")


def _merge_silver(spark: Any, delta_table: Any, plans: DataFrame, path: str, *, app_id: str, batch_id: int) -> None:
    from pyspark.sql import functions as sf

    columns = [f.name for f in DOCUMENTS.schema]
    source = plans.filter(sf.col("action") == "apply").select(*columns)
    updates = _silver_updates()

    def run() -> None:
        with txn(spark, app_id, batch_id):
            (
                delta_table.forPath(spark, path)
                .alias("t")
                .merge(source.alias("s"), "t.tenant = s.tenant AND t.doc_id = s.doc_id")
                .whenMatchedUpdate(condition="s.version > t.version", set=updates)
                .whenNotMatchedInsertAll()
                .execute()
            )

    retry_conflicts(run, what="silver.documents MERGE")


def _mirror(rt: Runtime, rows: list[Any]) -> int:
    mirrored = 0
    for r in rows:
        current = get_document(rt.lake, r["tenant"], r["doc_id"])
        if current is not None and current["status"] == DocumentStatus.deleted:
            rt.vectors.delete_document(r["tenant"], r["doc_id"])
            continue
        outcome = run_step(rt, Mirror(), r["tenant"], {r["doc_id"]: r["version"]}, can_retry=True)[r["doc_id"]]
        if outcome.state == "retry":
            # Fail the batch: it is re-run after a restart, and every write before this one is idempotent.
            raise DocLakeError(f"mirror v{r['version']} must be retried: {outcome.error}", doc_id=r["doc_id"])
        mirrored += outcome.state == "done"
    return mirrored
