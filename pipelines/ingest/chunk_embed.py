"""The chunk_embed step: chunk silver text, embed only what gold lacks, replace the document's gold rows."""

from __future__ import annotations

import logging
from typing import ClassVar

from pydantic import Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import IndexSwitched
from pipelines.ingest.guards import doc_locks, triage, version_error
from pipelines.ingest.plan import plan_rows
from pipelines.ingest.step import Step, StepResult, StepResults
from pipelines.lakehouse.documents import get_documents, update_documents
from pipelines.lakehouse.writer import replace_chunks
from pipelines.runtime import Runtime

__all__ = ["ChunkEmbed", "Embedded"]

log = logging.getLogger(__name__)


class Embedded(StepResult):
    chunks: int = Field(default=0, description="Chunks the version has.")
    embedded: int = Field(default=0, description="Chunks whose vectors were computed now.")
    reused: int = Field(default=0, description="Chunks whose vectors came from gold (the embedding cache).")
    removed: int = Field(default=0, description="Chunks of the previous version that the new one no longer has.")


class ChunkEmbed(Step):
    """Chunk and embed documents for the active index: one encode call, one gold MERGE, one silver commit."""

    name: ClassVar[str] = "chunk_embed"

    max_index_switches: int = Field(
        default=3,
        ge=1,
        description="How many times the step plans again when a reindex switches the active index while it embeds.",
    )

    def run(self, rt: Runtime, tenant: str, versions: dict[str, int]) -> StepResults:
        rows = get_documents(rt.lake, tenant, list(versions), with_text=True)
        results, ready = triage(rows, versions, (DocumentStatus.embedding,), idle=Embedded(idle=True))
        if not ready:
            return results
        for _ in range(self.max_index_switches):
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
                    gold_rows = [r for d in keep for r in plans[d].rows]
                    replace_chunks(rt.lake, index.gold, [(tenant, d) for d in keep], gold_rows)
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
                result = Embedded(
                    chunks=len(plan.rows), embedded=plan.embedded, reused=plan.reused, removed=plan.removed
                )
                results[doc_id] = result
                log.info("chunk_embed doc=%s v=%d %s", doc_id, versions[doc_id], result.model_dump())
            return results
        for doc_id in ready:
            results[doc_id] = IndexSwitched("the active index kept changing during chunk_embed", doc_id=doc_id)
        return results
