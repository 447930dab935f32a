"""Celery tasks: thin named adapters over ``pipelines.ingest``.

Each task takes (tenant, doc_id, version), makes one call into pipelines, maps retryable errors to a
retry, and records everything else as the document's ``failed`` status. A stale version is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from pipelines import ingest
from pipelines.errors import DocLakeError, StaleVersion
from pipelines.runtime import Runtime
from pipelines.settings import get_settings
from workers.celery_app import celery_app

__all__ = ["chunk_embed", "extract", "mirror", "register", "sweep"]

log = logging.getLogger("doclake.worker")


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """One Runtime per worker process, built after the fork (LanceDB and torch are not fork-safe)."""
    settings = get_settings()
    cores = os.cpu_count() or 1
    threads = settings.torch_threads or max(1, cores // settings.worker_concurrency)
    return Runtime.from_settings(settings, threads=threads)


def _run(task: Task, step: Callable[..., Any], tenant: str, doc_id: str, version: int) -> Any:
    rt = runtime()
    try:
        return step(rt, tenant, doc_id, version)
    except StaleVersion as e:
        log.info("skip %s doc=%s v=%d: %s", task.name, doc_id, version, e)
        raise Ignore() from e
    except DocLakeError as e:
        if e.retryable and task.request.retries < rt.settings.task_max_retries:
            raise task.retry(exc=e, countdown=min(60, 2 ** (task.request.retries + 1))) from e
        log.warning("%s failed doc=%s v=%d: %s", task.name, doc_id, version, e.describe())
        ingest.mark_failed(rt, tenant, doc_id, version, e.describe())
        raise Ignore() from e
    except Exception as e:  # a bug or an unexpected library error: record it, never lose the document
        log.exception("%s crashed doc=%s v=%d", task.name, doc_id, version)
        ingest.mark_failed(rt, tenant, doc_id, version, f"internal_error: {type(e).__name__}: {e}")
        raise Ignore() from e


@celery_app.task(name="doclake.extract", bind=True, acks_late=True)
def extract(self: Task, tenant: str, doc_id: str, version: int) -> bool:
    result: bool = _run(self, ingest.extract_step, tenant, doc_id, version)
    return result


@celery_app.task(name="doclake.chunk_embed", bind=True, acks_late=True)
def chunk_embed(self: Task, tenant: str, doc_id: str, version: int) -> dict[str, int] | None:
    result = _run(self, ingest.chunk_embed_step, tenant, doc_id, version)
    return result.model_dump() if result is not None else None


@celery_app.task(name="doclake.mirror", bind=True, acks_late=True)
def mirror(self: Task, tenant: str, doc_id: str, version: int) -> int:
    written: int = _run(self, ingest.mirror_step, tenant, doc_id, version)
    return written


@celery_app.task(name="doclake.register", bind=True, acks_late=True)
def register(
    self: Task, uri: str, filename: str | None, tenant: str, doc_id: str | None, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Register an object that is already in the object store (S3 events), then run the chain."""
    from workers.dispatch import enqueue_processing

    rt = runtime()
    data = rt.objects.get(uri)
    result = ingest.register_object(rt, data, filename=filename, tenant=tenant, doc_id=doc_id, metadata=metadata)
    if not result.duplicate:
        enqueue_processing(tenant, result.doc_id, result.version)
    return result.model_dump(mode="json")


@celery_app.task(name="doclake.sweep", bind=True)
def sweep(self: Task) -> int:
    from workers.sweeper import sweep_once

    return sweep_once(runtime())
