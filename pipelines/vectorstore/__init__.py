"""Vector stores: one protocol, a LanceDB implementation (embedded default)."""

from pipelines.vectorstore.base import StoredId, VectorHit, VectorStore, metadata_tags
from pipelines.vectorstore.lance import LanceVectorStore

__all__ = ["LanceVectorStore", "StoredId", "VectorHit", "VectorStore", "metadata_tags"]
