"""The step runner: the one retry/failure policy of every adapter (Celery tasks, the stream, inline runs).

Adapters never interpret a step's errors themselves: they run a step here and act on each
document's ``StepOutcome`` (send the next task, retry, stop).
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from pydantic import BaseModel, Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import DocLakeError, InvalidInput, StaleVersion
from pipelines.ingest.chunk_embed import ChunkEmbed, Embedded
from pipelines.ingest.extraction import Extract, Extracted
from pipelines.ingest.mirror import Mirror
from pipelines.ingest.step import Step, StepResult
from pipelines.lakehouse.documents import update_documents
from pipelines.observability import metrics
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = [
    "STEP_NAMES",
    "StepOutcome",
    "chain",
    "children_of",
    "mark_failed",
    "process_inline",
    "run_step",
    "step_named",
]

log = logging.getLogger(__name__)

# The order of a document's processing: each step acts on what the one before it left.
STEP_NAMES = ("extract", "chunk_embed", "mirror")

# Errors are recorded on the document; a bound keeps a traceback-sized message from bloating silver.
_MAX_ERROR_CHARS = 4000


class StepOutcome(BaseModel):
    """What became of one document in one step: the adapters act on this."""

    state: Literal["done", "skipped", "retry", "failed"]
    error: str | None = Field(default=None, description="Why it was skipped, must be retried, or failed.")
    result: StepResult | None = Field(default=None, description="The step's result when it is done.")


def step_named(name: str, settings: Settings) -> Step:
    """The configured step called ``name`` (Celery tasks name their step).

    Raises:
        InvalidInput: no step has that name.
    """
    if name == "extract":
        return Extract.from_settings(settings)
    if name == "chunk_embed":
        return ChunkEmbed()
    if name == "mirror":
        return Mirror()
    raise InvalidInput(f"unknown step {name!r} (steps: {', '.join(STEP_NAMES)})")


def chain(settings: Settings) -> list[Step]:
    """Every step of a document's processing, in order, configured from ``settings``."""
    return [step_named(name, settings) for name in STEP_NAMES]


def run_step(
    rt: Runtime, step: Step, tenant: str, versions: dict[str, int], *, can_retry: bool
) -> dict[str, StepOutcome]:
    """Run a step for document versions of a tenant and map each one's result to its outcome.

    A stale version is skipped; a retryable or unexpected error asks for a retry while ``can_retry``;
    a non-retryable doclake error (a bad file), or any error once retries are spent, is recorded as the
    version's ``failed`` status: a document never stays without a terminal state. An error of the
    whole call (a commit, the model) is every document's error.
    """
    started = time.perf_counter()
    try:
        results = step.run(rt, tenant, versions)
    except Exception as e:  # mapped per document below, like any other error
        results = dict.fromkeys(versions, e)
    outcomes = {d: _outcome(step.name, d, versions[d], r, can_retry=can_retry) for d, r in results.items()}
    failed = {d: (versions[d], o.error or "") for d, o in outcomes.items() if o.state == "failed"}
    mark_failed(rt, tenant, failed)
    # A document's share of the call: a batch of 32 that took 3 s is ~0.1 s of work per document.
    share = (time.perf_counter() - started) / max(1, len(versions))
    for outcome in outcomes.values():
        metrics.STEP_OUTCOMES.labels(step=step.name, state=outcome.state).inc()
        if outcome.state == "done":
            metrics.STEP_DURATION.labels(step=step.name).observe(share)
            if isinstance(outcome.result, Embedded):
                metrics.CHUNKS.labels(source="embedded").inc(outcome.result.embedded)
                metrics.CHUNKS.labels(source="reused").inc(outcome.result.reused)
    return outcomes


def mark_failed(rt: Runtime, tenant: str, failures: dict[str, tuple[int, str]]) -> set[str]:
    """Record terminal failures (doc_id → (version, error)) in one commit; returns the doc_ids recorded.

    A version a newer one superseded is left alone: the failure belongs to history, not to the document.
    """
    if not failures:
        return set()
    return update_documents(
        rt.lake,
        tenant,
        {d: v for d, (v, _) in failures.items()},
        status=DocumentStatus.failed.value,
        error={d: e[:_MAX_ERROR_CHARS] for d, (_, e) in failures.items()},
    )


def _outcome(step: str, doc_id: str, version: int, result: StepResult | Exception, *, can_retry: bool) -> StepOutcome:
    if not isinstance(result, Exception):
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


def process_inline(rt: Runtime, tenant: str, versions: dict[str, int]) -> dict[str, StepOutcome]:
    """Run every step in this process, a step at a time for all documents, as the batch tasks do
    (tests, the CLI, jobs without a broker). Each document's outcome is that of the last step it reached.

    Attachments the extract step registered are processed the same way afterwards, a level at a time
    (the workers enqueue them as a batch); their outcomes are in the result too.
    """
    outcomes: dict[str, StepOutcome] = {}
    todo = dict(versions)
    while todo:
        pending, todo = todo, {}
        for step in chain(rt.settings):
            if not pending:
                break
            reached = run_step(rt, step, tenant, pending, can_retry=False)
            outcomes.update(reached)
            todo.update(children_of(reached))
            pending = {d: v for d, v in pending.items() if outcomes[d].state == "done"}
    return outcomes


def children_of(outcomes: dict[str, StepOutcome]) -> dict[str, int]:
    """The attachment versions (doc_id → version) that extract outcomes ask to process next."""
    children: dict[str, int] = {}
    for outcome in outcomes.values():
        if outcome.state == "done" and isinstance(outcome.result, Extracted):
            children.update(outcome.result.children)
    return children
