"""Maintenance writes on vector stores: compact, erase deleted rows from disk, drop a whole store.

The operator commands (optimize, purge, dropping an index) call these; the stores' own methods do
the work, so what each kind of store needs (LanceDB compacts and keeps deleted rows in its files,
Pinecone does both by itself) stays in its adapter.
"""

from __future__ import annotations

from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.lance import LanceVectorStore

__all__ = ["compact_store", "drop_store", "erase_deleted"]


def compact_store(store: VectorStore) -> None:
    """Compact the store's own files and fold new rows into its indexes (a no-op where the service does it)."""
    store.optimize()


def erase_deleted(store: VectorStore) -> None:
    """Make deleted vectors unrecoverable: LanceDB rewrites its files and drops older versions.

    Service stores (Pinecone) delete for real: nothing to do.

    Raises:
        VectorStoreError: the rewrite failed; run it again.
    """
    if isinstance(store, LanceVectorStore):
        store.erase_deleted()


def drop_store(store: VectorStore) -> None:
    """Remove every vector of the store (a dropped index's table or namespaces)."""
    store.drop()
