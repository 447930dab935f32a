"""Enqueueing: the one place that knows the order of the processing chain.

Tasks are sent by their names (``workers.tasks`` registers them; ``workers.celery_app`` routes them
to their queues by name), so a producer such as the API never imports the task code.
"""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from pipelines.contracts.documents import DocumentStatus
from workers.celery_app import (
    CHUNK_EMBED,
    CHUNK_EMBED_BATCH,
    EXTRACT,
    EXTRACT_BATCH,
    EXTRACT_OCR,
    MIRROR,
    celery_app,
)

__all__ = ["enqueue_batch", "enqueue_mirror", "enqueue_processing"]


def _step(name: str, *args: object, immutable: bool = True) -> Signature:
    """A step of a chain; an immutable one ignores what the step before it returned."""
    return celery_app.signature(name, args=args, immutable=immutable)


def enqueue_processing(
    tenant: str,
    doc_id: str,
    version: int,
    *,
    from_status: DocumentStatus = DocumentStatus.queued,
    countdown: float | None = None,
    ocr: bool = False,
) -> None:
    """Send extract → chunk_embed for a version, starting where ``from_status`` left off.

    ``ocr``: the extraction is the OCR lane's (the document needs OCR; see ``workers.tasks``). The
    chunk_embed task mirrors the document to the vector store itself.
    """
    extract = EXTRACT_OCR if ocr else EXTRACT
    steps = [CHUNK_EMBED] if from_status == DocumentStatus.embedding else [extract, CHUNK_EMBED]
    chain(*(_step(s, tenant, doc_id, version) for s in steps)).apply_async(countdown=countdown)


def enqueue_mirror(tenant: str, doc_id: str, version: int, *, countdown: float | None = None) -> None:
    """Send the mirror step alone (a retry of a mirror that failed after chunk_embed)."""
    celery_app.send_task(MIRROR, args=(tenant, doc_id, version), countdown=countdown)


def enqueue_batch(tenant: str, versions: dict[str, int]) -> None:
    """Send the same chain for many versions of a tenant (doc_id → version), one task per step.

    Each step passes on the documents it finished; a document that needs a retry leaves the batch
    for its own one-document chain (see ``workers.tasks``).
    """
    chain(_step(EXTRACT_BATCH, versions, tenant), _step(CHUNK_EMBED_BATCH, tenant, immutable=False)).apply_async()
