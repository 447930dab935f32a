"""Writes that keep a vector store a mirror of gold: sync a document's records, remove a document.

Every path that changes what search can see (the mirror step, delete, the stream, reconcile,
purge) goes through these two functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.contracts.documents import VectorRecord
from pipelines.vectorstore.base import VectorStore

__all__ = ["remove_documents", "sync_documents"]


def sync_documents(store: VectorStore, tenant: str, records: dict[str, list[VectorRecord]]) -> dict[str, int]:
    """Make ``store`` hold exactly ``records`` for each document (doc_id → its records); returns counts.

    Upsert first, delete stale ids second: search never sees a document without vectors in between.
    A document with no records loses all of its vectors.
    """
    store.upsert([r for recs in records.values() for r in recs])
    for doc_id, recs in records.items():
        keep = {r.id for r in recs}
        stale = [i for i in store.document_ids(tenant, doc_id) if i not in keep]
        if stale:
            store.delete(stale, tenant=tenant, doc_id=doc_id)
    return {d: len(recs) for d, recs in records.items()}


def remove_documents(stores: Iterable[VectorStore], tenant: str, doc_ids: Iterable[str]) -> None:
    """Remove every vector of these documents from each store (every index: active, building, retired)."""
    ids = sorted(set(doc_ids))
    for store in stores:
        for doc_id in ids:
            store.delete_document(tenant, doc_id)
