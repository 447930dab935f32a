"""The chunk_embed step: chunk silver text, embed what gold lacks, MERGE gold."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from pipelines.contracts.documents import (
    DocumentStatus,
)
from pipelines.errors import IndexSwitched
from pipelines.ingest.guards import Results, doc_locks, single_result, triage, version_error
from pipelines.ingest.plan import plan_rows
from pipelines.lakehouse.documents import (
    get_documents,
    update_documents,
)
from pipelines.lakehouse.writer import replace_chunks
from pipelines.runtime import Runtime

__all__ = ["ChunkEmbedResult", "chunk_embed_many", "chunk_embed_step"]

log = logging.getLogger(__name__)


class ChunkEmbedResult(BaseModel):
    chunks: int
    embedded: int
    reused: int
    removed: int


def chunk_embed_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> ChunkEmbedResult | None:
    """Chunk silver text, embed only chunks gold does not already hold, and MERGE gold.

    Returns None when the step had already run for this version.
    """
    result: ChunkEmbedResult | None = single_result(chunk_embed_many(rt, tenant, {doc_id: version}), doc_id)
    return result


def chunk_embed_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``chunk_embed_step`` for many documents: one encode call, one gold MERGE, one silver commit."""
    rows = get_documents(rt.lake, tenant, list(versions), with_text=True)
    results, ready = triage(rows, versions, (DocumentStatus.embedding,), idle=None)
    if not ready:
        return results
    for _ in range(3):
        index = rt.index()
        plans = plan_rows(rt, tenant, list(ready.values()), index)
        with doc_locks(rt, tenant, ready):
            # A delete or new version may have landed while embedding.
            current = get_documents(rt.lake, tenant, list(ready))
            if rt.index(fresh=True).index_id != index.index_id:
                continue  # a reindex switched indexes while this step embedded: plan for the new one
            keep: dict[str, int] = {}
            for doc_id in ready:
                error = version_error(current.get(doc_id), doc_id, versions[doc_id])
                if error is not None:
                    results[doc_id] = error
                else:
                    keep[doc_id] = versions[doc_id]
            if keep:
                replace_chunks(
                    rt.lake, index.gold, [(tenant, d) for d in keep], [r for d in keep for r in plans[d].rows]
                )
                update_documents(
                    rt.lake,
                    tenant,
                    keep,
                    chunks={d: len(plans[d].rows) for d in keep},
                    chunks_embedded={d: plans[d].embedded for d in keep},
                    chunks_reused={d: plans[d].reused for d in keep},
                    model_id=index.model_id,
                    chunker_id=index.chunker.config_id,
                )
        for doc_id in keep:
            plan = plans[doc_id]
            results[doc_id] = ChunkEmbedResult(
                chunks=len(plan.rows), embedded=plan.embedded, reused=plan.reused, removed=plan.removed
            )
            log.info("chunk_embed doc=%s v=%d %s", doc_id, versions[doc_id], results[doc_id].model_dump())
        return results
    for doc_id in ready:
        results[doc_id] = IndexSwitched("the active index kept changing during chunk_embed", doc_id=doc_id)
    return results
