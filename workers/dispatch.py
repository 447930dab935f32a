"""Enqueueing: the one place that knows the order of the processing chain."""

from __future__ import annotations

from celery import chain

from pipelines.contracts.documents import DocumentStatus

__all__ = ["enqueue_batch", "enqueue_mirror", "enqueue_processing"]


def enqueue_processing(
    tenant: str,
    doc_id: str,
    version: int,
    *,
    from_status: DocumentStatus = DocumentStatus.queued,
    countdown: float | None = None,
) -> None:
    """Send extract → chunk_embed for a version, starting where ``from_status`` left off.

    The chunk_embed task mirrors the document to the vector store itself (see ``workers.tasks``).
    """
    from workers.tasks import chunk_embed, extract

    steps = [extract, chunk_embed]
    if from_status == DocumentStatus.embedding:
        steps = [chunk_embed]
    chain(*(s.si(tenant, doc_id, version) for s in steps)).apply_async(countdown=countdown)


def enqueue_mirror(tenant: str, doc_id: str, version: int, *, countdown: float | None = None) -> None:
    """Send the mirror step alone (a retry of a mirror that failed after chunk_embed)."""
    from workers.tasks import mirror

    mirror.si(tenant, doc_id, version).apply_async(countdown=countdown)


def enqueue_batch(tenant: str, versions: dict[str, int]) -> None:
    """Send the same chain for many versions of a tenant (doc_id → version), one task per step.

    Each step passes on the documents it finished; a document that needs a retry leaves the batch
    for its own one-document chain (see ``workers.tasks``).
    """
    from workers.tasks import chunk_embed_batch, extract_batch

    chain(extract_batch.si(versions, tenant), chunk_embed_batch.s(tenant)).apply_async()
