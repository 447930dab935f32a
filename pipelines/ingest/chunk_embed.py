"""The chunk_embed step: chunk silver text, embed only what gold lacks, replace the document's gold rows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import IndexSwitched
from pipelines.ingest.guards import doc_locks, triage, version_error
from pipelines.ingest.mirror import Mirror, Mirrored
from pipelines.ingest.plan import plan_rows
from pipelines.ingest.step import Step, StepResult, StepResults
from pipelines.lakehouse.documents import get_documents, update_documents
from pipelines.lakehouse.writer import replace_chunks
from pipelines.runtime import Runtime

__all__ = ["ChunkEmbed", "Embedded", "EmbeddedAndMirrored"]

log = logging.getLogger(__name__)


class Embedded(StepResult):
    chunks: int = Field(default=0, description="Chunks the version has.")
    embedded: int = Field(default=0, description="Chunks whose vectors were computed now.")
    reused: int = Field(default=0, description="Chunks whose vectors came from gold (the embedding cache).")
    removed: int = Field(default=0, description="Chunks of the previous version that the new one no longer has.")


@dataclass
class EmbeddedAndMirrored:
    """What ``ChunkEmbed.run_and_mirror`` did: each step's results, and the seconds the mirror's share took."""

    embedded: StepResults
    mirrored: StepResults = field(default_factory=dict)
    mirror_seconds: float = 0.0


class ChunkEmbed(Step):
    """Chunk and embed documents for the active index: one encode call, one gold MERGE, one silver commit."""

    name: ClassVar[str] = "chunk_embed"

    max_index_switches: int = Field(
        default=3,
        ge=1,
        description="How many times the step plans again when a reindex switches the active index while it embeds.",
    )

    def run(self, rt: Runtime, tenant: str, versions: dict[str, int]) -> StepResults:
        return self._run(rt, tenant, versions, mirror=None).embedded

    def run_and_mirror(self, rt: Runtime, tenant: str, versions: dict[str, int], mirror: Mirror) -> EmbeddedAndMirrored:
        """This step, then ``mirror`` for the documents it embedded, in the same lock hold and one silver commit.

        For a process that runs both steps (the Celery chain's last task). The mirror uses the index
        and the silver rows this step read under the documents' locks and the gold rows it wrote, so
        it reads nothing again; the silver commit that records the chunk counts also marks the
        documents the mirror finished ``indexed``. A document whose mirror failed keeps its status
        (``embedding``) in that commit, and its mirror result is the error: the runner retries or
        fails it like any mirror. Mirror results only exist for documents this step finished now.
        """
        return self._run(rt, tenant, versions, mirror=mirror)

    def _run(self, rt: Runtime, tenant: str, versions: dict[str, int], *, mirror: Mirror | None) -> EmbeddedAndMirrored:
        rows = get_documents(rt.lake, tenant, list(versions), with_text=True)
        results, ready = triage(rows, versions, (DocumentStatus.embedding,), idle=Embedded(idle=True))
        done = EmbeddedAndMirrored(embedded=results)
        if not ready:
            return done
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
                    changes: dict[str, Any] = {}
                    if mirror is not None:
                        started = time.perf_counter()
                        done.mirrored = mirror.run_held(
                            rt,
                            index,
                            tenant,
                            {d: current[d] for d in keep},
                            keep,
                            {d: [r.model_dump() for r in plans[d].rows] for d in keep},
                        )
                        done.mirror_seconds = time.perf_counter() - started
                        changes = _indexed_changes(current, keep, done.mirrored)
                    update_documents(
                        rt.lake,
                        tenant,
                        keep,
                        chunks={d: len(plans[d].rows) for d in keep},
                        chunks_embedded={d: plans[d].embedded for d in keep},
                        chunks_reused={d: plans[d].reused for d in keep},
                        model_id=index.model_id,
                        chunker_id=index.chunker.config_id,
                        **changes,
                    )
            for doc_id in keep:
                plan = plans[doc_id]
                result = Embedded(
                    chunks=len(plan.rows), embedded=plan.embedded, reused=plan.reused, removed=plan.removed
                )
                results[doc_id] = result
                log.info("chunk_embed doc=%s v=%d %s", doc_id, versions[doc_id], result.model_dump())
            return done
        for doc_id in ready:
            results[doc_id] = IndexSwitched("the active index kept changing during chunk_embed", doc_id=doc_id)
        return done


def _indexed_changes(current: dict[str, dict[str, Any]], keep: dict[str, int], mirrored: StepResults) -> dict[str, Any]:
    """The mirror's share of the silver commit: ``indexed`` (no error) for the documents it finished, the
    status and error they had for the others, so a failed or idle mirror leaves the document as it found it."""
    finished = {d for d in keep if isinstance(r := mirrored.get(d), Mirrored) and not r.idle}
    if not finished:
        return {}
    return {
        "status": {d: DocumentStatus.indexed.value if d in finished else current[d]["status"] for d in keep},
        "error": {d: None if d in finished else current[d]["error"] for d in keep},
    }
