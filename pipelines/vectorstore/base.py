"""The vector store protocol (DESIGN §4). The store is a mirror of gold, never the source of truth."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.ids import MetadataValue

__all__ = ["StoredId", "VectorHit", "VectorStore", "metadata_tags"]


class VectorHit(BaseModel):
    record: VectorRecord
    score: float


class StoredId(BaseModel):
    id: str
    tenant: str
    doc_id: str
    doc_version: int


def metadata_tags(metadata: dict[str, MetadataValue]) -> list[str]:
    """Exact-match tags ``key=<json value>`` so a filter is a set-containment test the store can index."""
    return [f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(metadata.items())]


@runtime_checkable
class VectorStore(Protocol):
    # Whether keyword_query works: it decides a query's default mode (hybrid, or dense where it does not).
    keyword_search: bool

    def upsert(self, records: list[VectorRecord]) -> None: ...

    def delete(self, ids: list[str], *, tenant: str, doc_id: str) -> None:
        """Delete these ids of one document (stores that list by document need the doc id)."""
        ...

    def delete_document(self, tenant: str, doc_id: str) -> None: ...

    def query(
        self,
        vector: list[float],
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        """Top-k chunks by similarity, best first, among those ``principals`` may read (public documents, and
        documents whose acl names one of them): a filter inside the k-NN, so k readable chunks come back."""
        ...

    def keyword_query(
        self,
        text: str,
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        """Top-k chunks by full-text (BM25) relevance, best first, among those ``principals`` may read.

        Raises:
            SearchModeUnsupported: the store keeps no text to search.
        """
        ...

    def document_ids(self, tenant: str, doc_id: str) -> list[str]: ...

    def iter_ids(self, tenant: str | None = None) -> Iterator[StoredId]: ...

    def count(self, tenant: str | None = None) -> int: ...

    def optimize(self) -> None:
        """Compact the store's own files (a no-op where the service does it)."""
        ...

    def drop(self) -> None:
        """Remove every vector of this store (a dropped index's table or namespaces)."""
        ...
