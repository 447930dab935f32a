"""Enqueueing: the one place that knows the order of the processing chain."""

from __future__ import annotations

from celery import chain

from pipelines.contracts import DocumentStatus

__all__ = ["enqueue_processing"]


def enqueue_processing(
    tenant: str, doc_id: str, version: int, *, from_status: DocumentStatus = DocumentStatus.queued
) -> None:
    """Send extract → chunk_embed → mirror for a version, starting where ``from_status`` left off."""
    from workers.tasks import chunk_embed, extract, mirror

    steps = [extract, chunk_embed, mirror]
    if from_status == DocumentStatus.embedding:
        steps = [chunk_embed, mirror]
    chain(*(s.si(tenant, doc_id, version) for s in steps)).apply_async()
