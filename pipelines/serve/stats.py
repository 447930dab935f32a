"""What the lake holds right now: documents by status, last ingestion, index size."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from pydantic import BaseModel, Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.storage.location import stored_size

__all__ = ["LakeStats", "collect_stats", "index_size"]

# How long this process answers the vector store's size from its last measure. Sizing it walks the
# whole store (on S3, a listing of every object of the LanceDB dataset), and /v1/stats and /metrics
# are polled (a bench every 0.2 s, a scraper every few seconds): measured at most this often, the
# polls stop competing with the encoder for the CPU. A size a few seconds old is fine for a gauge, but not
# one from before the vectors changed: a caller that knows the count passes it, and a new count re-measures.
INDEX_SIZE_TTL_S = 5.0

_sizes: dict[str, tuple[float, int | None, int]] = {}  # vectors root → (monotonic time measured, vectors, bytes)
_sizes_lock = threading.Lock()


class LakeStats(BaseModel):
    tenant: str | None = Field(description="Whose documents were counted; None means every tenant.")
    documents: dict[str, int] = Field(description="Documents by current status (every status is listed).")
    total: int = Field(description="Documents in silver, deleted tombstones included.")
    last_ingested_at: datetime | None = Field(description="When a document last became indexed.")
    chunks: int = Field(description="Rows in gold.chunks.")
    vectors: int = Field(description="Vectors in the vector store.")
    index_size_bytes: int = Field(description="Bytes the LanceDB store holds, on disk or on S3 (0 for Pinecone).")


def collect_stats(rt: Runtime, *, tenant: str | None = None) -> LakeStats:
    """Counts from silver, gold and the vector store (one read of each)."""
    where = f"tenant = {sql_quote(tenant)}" if tenant else None
    docs = rt.lake.read(DOCUMENTS, where, columns=["status", "updated_at"]).to_pylist()
    counts = {s.value: 0 for s in DocumentStatus}
    last: datetime | None = None
    for row in docs:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] == DocumentStatus.indexed and row["updated_at"] and (last is None or row["updated_at"] > last):
            last = row["updated_at"]
    chunks = rt.lake.count(rt.index().gold, tenant=tenant)
    vectors = rt.vectors.count(tenant)
    return LakeStats(
        tenant=tenant,
        documents=counts,
        total=len(docs),
        last_ingested_at=last,
        chunks=chunks,
        vectors=vectors,
        # The count of every tenant's vectors marks a change of the store; a tenant's count is as good a
        # mark for that tenant's view, since another tenant's writes do not show in it either way.
        index_size_bytes=index_size(rt.settings, vectors=vectors) if rt.settings.vector_store == "lancedb" else 0,
    )


def index_size(settings: Settings, *, max_age_s: float = INDEX_SIZE_TTL_S, vectors: int | None = None) -> int:
    """Bytes the LanceDB store holds, as measured by this process at most ``max_age_s`` ago (0: now).

    ``vectors``: the store's vector count as the caller just read it; a measure taken at another count is
    stale whatever its age. Concurrent callers with a stale size measure it once; the others wait for it.
    """
    root = settings.vectors_root
    with _sizes_lock:
        cached = _sizes.get(root)
        if (
            cached is not None
            and time.monotonic() - cached[0] < max_age_s
            and (vectors is None or cached[1] is None or cached[1] == vectors)
        ):
            return cached[2]
        started = time.monotonic()
        size = stored_size(settings, root)
        _sizes[root] = (started, vectors, size)
        return size
