"""Celery tasks: thin named adapters over ``pipelines.ingest``.

Each task takes (tenant, doc_id, version), makes one call into pipelines, maps retryable errors to a
retry, and records everything else as the document's ``failed`` status. A stale version is skipped.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from pipelines.contracts.acl import parse_acl_text
from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import DocLakeError, DocumentNotFound
from pipelines.ingest.chunk_embed import Embedded
from pipelines.ingest.extraction import Extract, Extracted
from pipelines.ingest.lifecycle import delete_document
from pipelines.ingest.register import RegisterItem, register_objects
from pipelines.ingest.runner import StepOutcome, children_of, run_embed_and_mirror, run_step, step_named
from pipelines.ingest.step import Step, StepResult
from pipelines.objectstore.store import ACL_METADATA_KEY
from pipelines.retry import backoff_delay
from pipelines.runtime import Runtime
from pipelines.settings import Settings, get_settings, worker_threads
from workers import dispatch
from workers.celery_app import (
    CHUNK_EMBED,
    CHUNK_EMBED_BATCH,
    EXTRACT,
    EXTRACT_BATCH,
    EXTRACT_OCR,
    MIRROR,
    REGISTER,
    REMOVE_OBJECT,
    celery_app,
)

__all__ = [
    "chunk_embed",
    "chunk_embed_batch",
    "extract",
    "extract_batch",
    "extract_ocr",
    "mirror",
    "register",
    "remove_object",
]

log = logging.getLogger("doclake.worker")


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """One Runtime per worker process, built after the fork (LanceDB and torch are not fork-safe)."""
    settings = get_settings()
    cores = os.cpu_count() or 1
    threads = settings.torch_threads or worker_threads(cores, settings.worker_concurrency)
    return Runtime.from_settings(settings, threads=threads)


def _retry_countdown(task: Task) -> float:
    """Seconds before the next delivery of ``task``: 2, 4, 8 … at most 60, jittered."""
    return backoff_delay(task.request.retries + 1, base=2, cap=60)


# The OCR lane's task runs the extract step itself, reading pages by OCR; the extract queue's defers them.
_OCR_LANE = "ocr"


def _step(name: str, settings: Settings) -> Step:
    """The step a task runs: on the extract queue, documents that need OCR are handed back unread
    (``Extracted.needs_ocr``, when DOCLAKE_OCR_LANE); on the OCR lane, the same step reads them."""
    if name == "extract":
        return Extract.from_settings(settings, defer_ocr=settings.ocr_lane)
    return step_named("extract" if name == _OCR_LANE else name, settings)


def _outcomes(step: str, tenant: str, versions: dict[str, int], *, can_retry: bool) -> dict[str, StepOutcome]:
    rt = runtime()
    return run_step(rt, _step(step, rt.settings), tenant, versions, can_retry=can_retry)


def _needs_ocr(result: StepResult | None) -> bool:
    return isinstance(result, Extracted) and result.needs_ocr


def _can_retry(task: Task) -> bool:
    return bool(task.request.retries < runtime().settings.task_max_retries)


def _run(task: Task, step: str, tenant: str, doc_id: str, version: int) -> StepResult | None:
    outcome = _outcomes(step, tenant, {doc_id: version}, can_retry=_can_retry(task))[doc_id]
    return _act(task, outcome)


def _act(task: Task, outcome: StepOutcome) -> StepResult | None:
    """The result of a one-document task's step, or the retry or stop its outcome asks for."""
    if outcome.state == "retry":
        raise task.retry(countdown=_retry_countdown(task))
    if outcome.state != "done":
        raise Ignore()  # stops the chain: the status is recorded (failed) or belongs to a newer version
    return outcome.result


def _embed_and_mirror(
    tenant: str, versions: dict[str, int], *, can_retry: bool
) -> tuple[dict[str, StepOutcome], dict[str, int]]:
    """chunk_embed, then the mirror of the documents it wrote, in the same task: chunk_embed's outcomes
    and the versions the mirror finished.

    Mirroring is a separate step (a vector-store failure retries the mirror alone, never the
    embedding) but not a separate message: a queued mirror task waited for the broker's poll and,
    under load, behind other documents' chunk_embed tasks in the embed queue, which is most of what
    separated "embedded" from "searchable". Nor a separate lock hold or silver commit: it runs in
    chunk_embed's, and that commit marks it indexed (``run_embed_and_mirror``). A document whose
    mirror needs a retry gets a mirror task of its own, with that task's retry budget.
    """
    embedded, outcomes = run_embed_and_mirror(runtime(), tenant, versions, can_retry=can_retry, can_retry_mirror=True)
    for doc_id, outcome in outcomes.items():
        if outcome.state == "retry":
            log.info("mirror doc=%s will be retried: %s", doc_id, outcome.error)
            dispatch.enqueue_mirror(tenant, doc_id, versions[doc_id], countdown=2)
    return embedded, {d: versions[d] for d, o in outcomes.items() if o.state == "done"}


def _enqueue_children(tenant: str, children: dict[str, int]) -> None:
    """Send the attachments an extract registered as documents, as a batch upload's are sent (groups of
    DOCLAKE_INGEST_BATCH_SIZE). They are queued in Delta already: a lost message is re-sent by the sweeper."""
    items = sorted(children.items())
    size = runtime().settings.ingest_batch_size
    for start in range(0, len(items), size):
        group = dict(items[start : start + size])
        try:
            dispatch.enqueue_batch(tenant, group)
        except Exception:
            log.exception("enqueue of %d attachments failed; the sweeper will retry", len(group))


def _already_mirrored(result: StepResult | None) -> bool:
    """An idle chunk_embed (a duplicate delivery) found its document embedded: its mirror ran with it."""
    return isinstance(result, Embedded) and result.idle


# Where a document's own chain starts again when it leaves a batch at this step.
_RESUME_AT = {
    "extract": DocumentStatus.queued,
    "chunk_embed": DocumentStatus.embedding,
}


def _run_many(step: str, tenant: str, versions: dict[str, int]) -> dict[str, int]:
    """Run a step for a batch; returns the versions it finished, for the next step of the chain.

    A batch is not retried as a whole: each document that asks for a retry (or every document,
    when the whole call failed) continues in its own one-document chain, with that chain's retry
    budget, so one bad document never holds back or fails the rest.
    """
    return _batch_went_on(step, tenant, versions, _outcomes(step, tenant, versions, can_retry=True))


def _batch_went_on(
    step: str, tenant: str, versions: dict[str, int], outcomes: dict[str, StepOutcome]
) -> dict[str, int]:
    """What ``_run_many`` does with a batch step's outcomes."""
    _enqueue_children(tenant, children_of(outcomes))
    for doc_id, outcome in outcomes.items():
        if outcome.state == "retry":
            log.info("%s doc=%s leaves its batch for a retry: %s", step, doc_id, outcome.error)
            dispatch.enqueue_processing(tenant, doc_id, versions[doc_id], from_status=_RESUME_AT[step], countdown=2)
        elif outcome.state == "done" and _needs_ocr(outcome.result):
            dispatch.enqueue_processing(tenant, doc_id, versions[doc_id], ocr=True)  # its own chain, on the lane
    # A chunk_embed that found its work done (a duplicate delivery): as in the one-document task,
    # nothing follows it (its mirror ran with it).
    done = {
        d: versions[d]
        for d, o in outcomes.items()
        if o.state == "done" and not _already_mirrored(o.result) and not _needs_ocr(o.result)
    }
    if not done:
        raise Ignore()  # nothing left for the next step
    return done


@celery_app.task(name=EXTRACT_BATCH, bind=True, acks_late=True)
def extract_batch(self: Task, versions: dict[str, int], tenant: str) -> dict[str, int]:
    return _run_many("extract", tenant, versions)


@celery_app.task(name=CHUNK_EMBED_BATCH, bind=True, acks_late=True)
def chunk_embed_batch(self: Task, versions: dict[str, int], tenant: str) -> dict[str, int]:
    """chunk_embed, then mirror, for a batch (the last task of a batch chain)."""
    embedded, mirrored = _embed_and_mirror(tenant, versions, can_retry=True)
    _batch_went_on("chunk_embed", tenant, versions, embedded)  # retries leave the batch; Ignore when none went on
    return mirrored


@celery_app.task(name=EXTRACT, bind=True, acks_late=True)
def extract(self: Task, tenant: str, doc_id: str, version: int) -> dict[str, Any] | None:
    """extract; a document that needs OCR continues in a chain of its own on the OCR lane."""
    result = _run(self, "extract", tenant, doc_id, version)
    if _needs_ocr(result):
        dispatch.enqueue_processing(tenant, doc_id, version, ocr=True)
        raise Ignore()  # this chain's chunk_embed is the lane chain's to send
    return _extracted(tenant, result)


@celery_app.task(name=EXTRACT_OCR, bind=True, acks_late=True)
def extract_ocr(self: Task, tenant: str, doc_id: str, version: int) -> dict[str, Any] | None:
    """extract on the OCR lane (the ``ocr`` queue): the same step, reading the pages that need OCR."""
    return _extracted(tenant, _run(self, _OCR_LANE, tenant, doc_id, version))


def _extracted(tenant: str, result: StepResult | None) -> dict[str, Any] | None:
    if isinstance(result, Extracted) and result.children:
        _enqueue_children(tenant, result.children)
    return result.model_dump() if result else None


@celery_app.task(name=CHUNK_EMBED, bind=True, acks_late=True)
def chunk_embed(self: Task, tenant: str, doc_id: str, version: int) -> dict[str, Any] | None:
    """chunk_embed, then mirror (the last task of a document's chain)."""
    embedded, _ = _embed_and_mirror(tenant, {doc_id: version}, can_retry=_can_retry(self))
    result = _act(self, embedded[doc_id])
    if result is None or _already_mirrored(result):
        return None
    return result.model_dump()


@celery_app.task(name=MIRROR, bind=True, acks_late=True)
def mirror(self: Task, tenant: str, doc_id: str, version: int) -> dict[str, Any] | None:
    result = _run(self, "mirror", tenant, doc_id, version)
    return result.model_dump() if result else None


@celery_app.task(name=REGISTER, bind=True, acks_late=True)
def register(
    self: Task, uri: str, filename: str | None, tenant: str, doc_id: str | None, metadata: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Register an object that is already in the object store (S3 events), then run the chain."""
    rt = runtime()
    try:
        stored = rt.objects.get_object(uri)
        # Who may read it comes with the object (x-amz-meta-doclake-acl); without it the document keeps its acl.
        acl = parse_acl_text(stored.user_metadata.get(ACL_METADATA_KEY), doc_id=doc_id)
        item = RegisterItem(
            data=stored.data, filename=filename, doc_id=doc_id, metadata=metadata, stored_uri=uri, acl=acl
        )
        result = register_objects(rt, [item], tenant=tenant, source="s3")[0]
    except DocumentNotFound:
        log.warning("object %s vanished before it was registered", uri)  # its Removed event follows
        return None
    except DocLakeError as e:
        if e.retryable and self.request.retries < rt.settings.task_max_retries:
            raise self.retry(countdown=_retry_countdown(self)) from e
        raise
    if result.needs_processing:
        dispatch.enqueue_processing(tenant, result.doc_id, result.version)
    return result.model_dump(mode="json")


@celery_app.task(name=REMOVE_OBJECT, bind=True, acks_late=True)
def remove_object(self: Task, tenant: str, doc_id: str) -> str | None:
    """An object was removed from the bucket: delete its document (no-op if it never became one).

    The delete writes its own change event, so stream consumers learn of it as of an API DELETE.
    """
    try:
        return delete_document(runtime(), tenant, doc_id).status.value
    except DocumentNotFound:
        return None
