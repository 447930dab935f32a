"""The step runner: the one retry/failure policy of every adapter (Celery, the stream, inline runs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from pipelines.contracts.documents import (
    DocumentStatus,
)
from pipelines.errors import DocLakeError, StaleVersion
from pipelines.ingest.chunk_embed import ChunkEmbedResult, chunk_embed_many
from pipelines.ingest.extraction import extract_many
from pipelines.ingest.guards import Results
from pipelines.ingest.mirror import mirror_many
from pipelines.lakehouse.documents import (
    update_document,
    update_documents,
)
from pipelines.observability import metrics
from pipelines.runtime import Runtime

__all__ = ["STEPS", "StepOutcome", "mark_failed", "process_inline", "process_inline_many", "run_many", "run_step"]

log = logging.getLogger(__name__)


def mark_failed(rt: Runtime, tenant: str, doc_id: str, version: int, error: str) -> bool:
    """Record a terminal failure on the version (no-op if a newer version superseded it)."""
    return update_document(rt.lake, tenant, doc_id, version, status=DocumentStatus.failed.value, error=error[:4000])


STEPS: dict[str, Callable[[Runtime, str, dict[str, int]], Results]] = {
    "extract": extract_many,
    "chunk_embed": chunk_embed_many,
    "mirror": mirror_many,
}


class StepOutcome(BaseModel):
    """What became of one step: the adapters (Celery, the stream, inline runs) act on this."""

    state: Literal["done", "skipped", "retry", "failed"]
    error: str | None = None
    result: Any = None


def run_step(rt: Runtime, step: str, tenant: str, doc_id: str, version: int, *, can_retry: bool) -> StepOutcome:
    """Run a step for one document version and map its errors (see ``run_many``)."""
    return run_many(rt, step, tenant, {doc_id: version}, can_retry=can_retry)[doc_id]


def run_many(
    rt: Runtime, step: str, tenant: str, versions: dict[str, int], *, can_retry: bool
) -> dict[str, StepOutcome]:
    """Run a step for document versions of a tenant and map each one's error: the single
    retry/failure policy of every adapter.

    A stale version is skipped; a retryable or unexpected error asks for a retry while ``can_retry``;
    a non-retryable doclake error (a bad file), or any error once retries are spent, is recorded as the
    version's ``failed`` status: a document never stays without a terminal state. An error of the
    whole call (a commit, the model) is every document's error.
    """
    started = time.perf_counter()
    try:
        results = STEPS[step](rt, tenant, versions)
    except Exception as e:  # mapped per document below, like any other error
        results = dict.fromkeys(versions, e)
    outcomes = {d: _outcome(step, d, versions[d], r, can_retry=can_retry) for d, r in results.items()}
    failed = {d: o.error or "" for d, o in outcomes.items() if o.state == "failed"}
    if failed:
        update_documents(
            rt.lake,
            tenant,
            {d: versions[d] for d in failed},
            status=DocumentStatus.failed.value,
            error={d: e[:4000] for d, e in failed.items()},
        )
    # A document's share of the call: a batch of 32 that took 3 s is ~0.1 s of work per document.
    share = (time.perf_counter() - started) / max(1, len(versions))
    for outcome in outcomes.values():
        metrics.STEP_OUTCOMES.labels(step=step, state=outcome.state).inc()
        if outcome.state == "done":
            metrics.STEP_DURATION.labels(step=step).observe(share)
            if isinstance(outcome.result, ChunkEmbedResult):
                metrics.CHUNKS.labels(source="embedded").inc(outcome.result.embedded)
                metrics.CHUNKS.labels(source="reused").inc(outcome.result.reused)
    return outcomes


def _outcome(step: str, doc_id: str, version: int, result: Any, *, can_retry: bool) -> StepOutcome:
    if not isinstance(result, BaseException):
        return StepOutcome(state="done", result=result)
    if isinstance(result, StaleVersion):
        log.info("skip %s doc=%s v=%d: %s", step, doc_id, version, result)
        return StepOutcome(state="skipped", error=result.describe())
    if isinstance(result, DocLakeError):
        if result.retryable and can_retry:
            return StepOutcome(state="retry", error=result.describe())
        log.warning("%s failed doc=%s v=%d: %s", step, doc_id, version, result.describe())
        return StepOutcome(state="failed", error=result.describe())
    log.error("%s crashed doc=%s v=%d", step, doc_id, version, exc_info=result)
    error = f"internal_error: {type(result).__name__}: {result}"
    # Unknown errors may be transient (a resource, a race): retry them like retryable ones;
    # a true bug fails every retry and then ends in `failed` like any poison document.
    return StepOutcome(state="retry" if can_retry else "failed", error=error)


def process_inline(rt: Runtime, tenant: str, doc_id: str, version: int) -> StepOutcome:
    """Run every step in this process, in order (tests, the CLI, batch jobs without a broker)."""
    outcome = StepOutcome(state="skipped")
    for step in STEPS:
        outcome = run_step(rt, step, tenant, doc_id, version, can_retry=False)
        if outcome.state != "done":
            break
    return outcome


def process_inline_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> dict[str, StepOutcome]:
    """``process_inline`` for many documents, a step at a time, as the batch tasks run them."""
    outcomes: dict[str, StepOutcome] = {}
    pending = dict(versions)
    for step in STEPS:
        if not pending:
            break
        outcomes.update(run_many(rt, step, tenant, pending, can_retry=False))
        pending = {d: v for d, v in pending.items() if outcomes[d].state == "done"}
    return outcomes
