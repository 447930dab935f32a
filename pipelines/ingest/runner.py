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
from pipelines.ingest.chunk_embed import ChunkEmbed, Embedded, EmbeddedAndMirrored
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
    "run_embed_and_mirror",
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
    outcomes = _outcomes(step.name, versions, results, can_retry=can_retry)
    mark_failed(rt, tenant, _failures(versions, outcomes))
    # A document's share of the call: a batch of 32 that took 3 s is ~0.1 s of work per document.
    _record(step.name, outcomes, (time.perf_counter() - started) / max(1, len(versions)))
    return outcomes


def run_embed_and_mirror(
    rt: Runtime, tenant: str, versions: dict[str, int], *, can_retry: bool, can_retry_mirror: bool
) -> tuple[dict[str, StepOutcome], dict[str, StepOutcome]]:
    """``run_step`` of chunk_embed and then of mirror, fused: one lock hold and one silver commit for both.

    For a process that runs both steps for the same documents (``ChunkEmbed.run_and_mirror``). Returns
    chunk_embed's outcomes, and the mirror's for the documents chunk_embed finished now (not for an
    idle one: its mirror already ran). Each step's outcomes follow its own retry policy (``can_retry``,
    ``can_retry_mirror``) and terminal failures of both are recorded in one commit, as ``run_step``
    does; an error of the whole call (the shared commit) is chunk_embed's, whose re-run repeats the
    mirror too.
    """
    embed, mirror = ChunkEmbed(), Mirror()
    started = time.perf_counter()
    try:
        done = embed.run_and_mirror(rt, tenant, versions, mirror)
    except Exception as e:  # mapped per document below, like any other error
        done = EmbeddedAndMirrored(embedded=dict.fromkeys(versions, e))
    embedded = _outcomes(embed.name, versions, done.embedded, can_retry=can_retry)
    mirrored = _outcomes(mirror.name, versions, done.mirrored, can_retry=can_retry_mirror)
    mark_failed(rt, tenant, {**_failures(versions, embedded), **_failures(versions, mirrored)})
    elapsed = time.perf_counter() - started
    _record(embed.name, embedded, (elapsed - done.mirror_seconds) / max(1, len(versions)))
    _record(mirror.name, mirrored, done.mirror_seconds / max(1, len(mirrored)))
    return embedded, mirrored


def _outcomes(
    step: str, versions: dict[str, int], results: dict[str, StepResult | Exception], *, can_retry: bool
) -> dict[str, StepOutcome]:
    return {d: _outcome(step, d, versions[d], r, can_retry=can_retry) for d, r in results.items()}


def _failures(versions: dict[str, int], outcomes: dict[str, StepOutcome]) -> dict[str, tuple[int, str]]:
    return {d: (versions[d], o.error or "") for d, o in outcomes.items() if o.state == "failed"}


def _record(step: str, outcomes: dict[str, StepOutcome], share: float) -> None:
    """Count outcomes; time and count chunks of the done ones (``share``: one document's seconds of the call)."""
    for outcome in outcomes.values():
        metrics.STEP_OUTCOMES.labels(step=step, state=outcome.state).inc()
        if outcome.state == "done":
            metrics.STEP_DURATION.labels(step=step).observe(share)
            if isinstance(outcome.result, Embedded):
                metrics.CHUNKS.labels(source="embedded").inc(outcome.result.embedded)
                metrics.CHUNKS.labels(source="reused").inc(outcome.result.reused)


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
    (the workers enqueue them as a batch); their outcomes are in the result too. chunk_embed and
    mirror run fused, as in the tasks (``run_embed_and_mirror``).
    """
    outcomes: dict[str, StepOutcome] = {}
    todo = dict(versions)
    while todo:
        pending, todo = todo, {}
        mirrored: dict[str, StepOutcome] = {}
        for step in chain(rt.settings):
            if not pending:
                break
            if step.name == "chunk_embed":
                reached, mirrored = run_embed_and_mirror(rt, tenant, pending, can_retry=False, can_retry_mirror=False)
            elif step.name == "mirror":
                reached = mirrored  # it ran with chunk_embed; an idle chunk_embed's document needs none
            else:
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
