"""The micro-batch (foreachBatch) of the update stream: its steps, written once for both engines.

read → validate → group per document → plan each (newer than silver? chunk + embed what gold lacks)
→ quarantine the invalid, with the error → take deleted documents out of every index → write gold
→ write silver → mirror to the vector store.

The engine (``pipelines.stream.engines``) is chosen by the batch's size: up to
``stream_driver_max_events`` events (the usual case) the batch is collected to the driver and
committed with delta-rs; a larger one is validated and planned on the executors and committed with
Spark. The steps, their order and the writer's rules are the same for both.

Crash safety: the source replays a batch with the same id after a crash. Every Delta commit carries
(txnAppId, txnVersion=batch id) — Spark's writer options or delta-rs's app transactions record the
same Delta ``txn`` action — so a re-run skips what the first run committed; a winner whose
version silver already holds is only re-mirrored (upsert by chunk id, idempotent). Each chunk ends up
exactly once in gold (MERGE key) and in the vector store (upsert key).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import DocLakeError
from pipelines.ingest.lifecycle import delete_document
from pipelines.ingest.mirror import Mirror
from pipelines.ingest.runner import run_step
from pipelines.lakehouse.documents import get_children, get_documents
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.lake import Txn
from pipelines.lakehouse.writer import DocKey, replace_chunks
from pipelines.observability import metrics
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.stream.engines import BatchEngine, DriverEngine, SparkEngine
from pipelines.vectorstore.mirror import remove_documents

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["HOLD_ENV", "BatchResult", "apply_payloads", "process_batch"]

log = logging.getLogger(__name__)

# Fault injection for the crash drill: hold the batch after this point so a test can SIGKILL it there.
HOLD_ENV = "DOCLAKE_STREAM_DRILL_HOLD"


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
    txn = (app_id, batch_id)
    engine = _engine(rt, df, limit, clock, txn=txn)
    try:
        _apply(rt, engine, result, clock, source=source, txn=txn)
    finally:
        engine.close()
    log.info("stream batch %s", result.model_dump_json())
    return result


def apply_payloads(rt: Runtime, payloads: list[str], batch_id: int, *, source: str, app_id: str) -> BatchResult:
    """Apply a micro-batch of raw events already in memory, on the driver engine (delta-rs): the same steps as
    ``process_batch`` without a SparkSession (tests replaying bronze.document_updates, small tools)."""
    result = BatchResult(batch_id=batch_id)
    clock = _PhaseClock(result.seconds)
    txn = (app_id, batch_id)
    engine = DriverEngine(rt, payloads, txn=txn)
    try:
        _apply(rt, engine, result, clock, source=source, txn=txn)
    finally:
        engine.close()
    return result


def _engine(rt: Runtime, df: DataFrame, limit: int, clock: _PhaseClock, *, txn: Txn) -> BatchEngine:
    """The driver engine for a batch of at most ``limit`` events, else the Spark engine."""
    if limit > 0:
        # One small Spark job tells whether the batch is small, and if so hands over the whole of it.
        payloads = [row[0] for row in df.select("payload").limit(limit + 1).collect()]
        clock.lap("collect")
        if len(payloads) <= limit:
            return DriverEngine(rt, payloads, txn=txn)
    return SparkEngine(rt, df, txn=txn)


def _apply(rt: Runtime, engine: BatchEngine, result: BatchResult, clock: _PhaseClock, *, source: str, txn: Txn) -> None:
    result.events = engine.validate()
    clock.lap("validate")
    if result.events == 0:
        return
    plans = engine.plan()
    clock.lap("plan")
    result.quarantined = engine.quarantine(source=f"stream:{source}")
    clock.lap("quarantine")
    applied = [p for p in plans if p["action"] == "apply"]
    if applied:
        active = rt.index(fresh=True)
        deleted = [(p["tenant"], p["doc_id"]) for p in applied if p["status"] == DocumentStatus.deleted]
        _unindex(rt, deleted, active=active, txn=txn)
        engine.replace_chunks(active.gold, [(p["tenant"], p["doc_id"]) for p in applied])
        clock.lap("gold_merge")
        _hold(rt.settings, "gold")
        engine.put_versions()
        clock.lap("silver_merge")
    _finish(rt, result, clock, plans, oldest=engine.oldest_event(), source=source)


def _by_tenant(docs: list[DocKey]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for tenant, doc_id in docs:
        grouped.setdefault(tenant, []).append(doc_id)
    return grouped


def _unindex(rt: Runtime, deleted: list[DocKey], *, active: IndexSpec, txn: Txn) -> None:
    """Take deleted documents out of every index (active, building, retired), as a synchronous delete does.

    Vectors first: the vector store is what users see. The active index's gold is replaced by the
    batch's gold write; every other index loses the documents' rows here. Those writes carry no
    rows, so delta-rs commits them on the driver whichever engine runs the batch.
    """
    if not deleted:
        return
    indexes = rt.indexes()
    for tenant, doc_ids in sorted(_by_tenant(deleted).items()):
        remove_documents([rt.vectors_for(index) for index in indexes], tenant, doc_ids)
    for index in indexes:
        if index.index_id != active.index_id:
            replace_chunks(rt.lake, index.gold, deleted, [], txn=txn)


def _finish(
    rt: Runtime,
    result: BatchResult,
    clock: _PhaseClock,
    plans: list[dict[str, Any]],
    *,
    oldest: datetime | None,
    source: str,
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


def _mirror(rt: Runtime, rows: list[dict[str, Any]]) -> int:
    """Mirror the documents' new versions (the runner's mirror step, one call per tenant); returns how many.

    A document silver holds as deleted (applied now, or before a crash) leaves every index's vector
    store instead, and its attachments are deleted.
    """
    versions: dict[str, dict[str, int]] = {}
    for r in rows:
        versions.setdefault(r["tenant"], {})[r["doc_id"]] = r["version"]
    mirrored = 0
    for tenant, wanted in sorted(versions.items()):
        current = get_documents(rt.lake, tenant, list(wanted))
        deleted = sorted(d for d in wanted if d in current and current[d]["status"] == DocumentStatus.deleted)
        if deleted:
            remove_documents([rt.vectors_for(index) for index in rt.indexes()], tenant, deleted)
            _delete_attachments(rt, tenant, deleted)
        live = {d: v for d, v in wanted.items() if d not in deleted}
        if not live:
            continue
        outcomes = run_step(rt, Mirror(), tenant, live, can_retry=True)
        retry = sorted(((d, o) for d, o in outcomes.items() if o.state == "retry"), key=lambda item: item[0])
        if retry:
            # Fail the batch: it is re-run after a restart, and every write before this one is idempotent.
            doc_id, outcome = retry[0]
            raise DocLakeError(f"mirror of {len(retry)} document(s) must be retried: {outcome.error}", doc_id=doc_id)
        mirrored += sum(1 for o in outcomes.values() if o.state == "done")
    return mirrored


def _delete_attachments(rt: Runtime, tenant: str, deleted: list[str]) -> None:
    """Delete the attachments (at every level) of documents the stream deleted, as an API delete does.

    Through ``delete_document`` itself: on a document already deleted it only deletes the children, under
    the parent's lock and depth first. After the parent's tombstone, not before it as an API delete
    does: an extract of the parent's old version still running then finds itself stale under that lock
    and registers no child, and a crash before this point is finished by the batch's replay, which
    re-mirrors (and so reaches here) every document silver holds as deleted.
    """
    for parent in sorted(get_children(rt.lake, tenant, deleted)):
        delete_document(rt, tenant, parent)
