"""A vector store that fails on demand: an injected fault wrapped around a real store.

Not a double of a service: every call it lets through goes to the real store it wraps (LanceDB in
the tests), so what a test reads back afterwards is real.
"""

from __future__ import annotations

from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.ids import MetadataValue
from pipelines.errors import VectorStoreError
from pipelines.vectorstore.base import VectorHit, VectorStore

__all__ = ["FailingStore"]


class FailingStore:
    """Delegates to a real store; raises a retryable error on the next ``failures`` write calls."""

    def __init__(self, inner: VectorStore, *, failures: int, on: str) -> None:
        self.inner = inner
        self.failures = failures
        self.on = on

    def _maybe_fail(self, op: str) -> None:
        if op == self.on and self.failures > 0:
            self.failures -= 1
            raise VectorStoreError(f"injected {op} failure")

    def upsert(self, records: list[VectorRecord]) -> None:
        self._maybe_fail("upsert")
        self.inner.upsert(records)

    def delete(self, ids: list[str], *, tenant: str, doc_id: str) -> None:
        self._maybe_fail("delete")
        self.inner.delete(ids, tenant=tenant, doc_id=doc_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def query(
        self, vector: list[float], *, k: int, tenant: str, filter: dict[str, MetadataValue] | None = None
    ) -> list[VectorHit]:
        return self.inner.query(vector, k=k, tenant=tenant, filter=filter)
