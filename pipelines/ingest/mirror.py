"""The mirror step: make the vector store hold exactly a document's gold rows, then mark it indexed."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from pipelines.contracts.documents import (
    DocumentStatus,
    VectorRecord,
)
from pipelines.contracts.ids import MetadataValue
from pipelines.ingest.guards import doc_locks, triage
from pipelines.ingest.plan import plan_rows
from pipelines.ingest.step import Step, StepResult, StepResults
from pipelines.lakehouse.chunks import docs_chunks
from pipelines.lakehouse.documents import (
    get_documents,
    update_documents,
)
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.writer import replace_chunks
from pipelines.runtime import Runtime
from pipelines.vectorstore.mirror import sync_documents

__all__ = ["Mirror", "Mirrored", "mirror_documents", "vector_records"]


def vector_records(gold_rows: list[dict[str, Any]], metadata: dict[str, MetadataValue]) -> list[VectorRecord]:
    """Vector-store records of gold rows (one document's metadata applies to all of them).

    The acl comes from the gold rows themselves: gold carries it, so every rebuild of the store from
    gold (reindex, reconcile, restore) restores who may read what.
    """
    return [
        VectorRecord(
            id=g["chunk_id"],
            tenant=g["tenant"],
            doc_id=g["doc_id"],
            doc_version=g["doc_version"],
            vector=g["embedding"],
            text=g["text"],
            filename=g["filename"],
            page_start=g["page_start"],
            page_end=g["page_end"],
            char_start=g["char_start"],
            char_end=g["char_end"],
            metadata=metadata,
            acl=g.get("acl"),
        )
        for g in gold_rows
    ]


def mirror_documents(
    rt: Runtime,
    index: IndexSpec,
    tenant: str,
    metadata: dict[str, dict[str, MetadataValue]],
    *,
    gold: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, int]:
    """Make the index's vector store hold exactly these documents' gold rows of that index.

    ``metadata`` is doc_id → the document's metadata (filters match it). One gold read, one upsert;
    upsert first, stale ids deleted second, so search never sees a document without vectors.
    ``gold`` (doc_id → rows) skips the read: only for rows the caller wrote to the index's gold
    under the documents' locks it still holds, so they are exactly what gold holds.
    Returns doc_id → vectors written.
    """
    by_doc: dict[str, list[dict[str, Any]]] = {d: [] for d in metadata}
    if gold is not None:
        by_doc.update({d: gold.get(d, []) for d in metadata})
    else:
        for g in docs_chunks(rt.lake, tenant, list(metadata), gold=index.gold).to_pylist():
            by_doc[g["doc_id"]].append(g)
    records = {d: vector_records(rows, metadata[d]) for d, rows in by_doc.items()}
    return sync_documents(rt.vectors_for(index), tenant, records)


class Mirrored(StepResult):
    vectors: int = Field(default=0, description="Vectors written to the store.")


class Mirror(Step):
    """Mirror documents' gold rows to the active index's vector store, drop stale ids, mark them indexed.

    One gold read, one upsert and one silver commit for all of them. A document whose gold rows are
    of another version (chunk_embed wrote them to an index a reindex just replaced) is built here for
    the active index first, reusing the old index's vectors when the model is the same.
    """

    name: ClassVar[str] = "mirror"
    # The statuses it acts on: ``embedding`` (just embedded) and ``indexed`` (a retry, a re-mirror).
    acts_on: ClassVar[tuple[DocumentStatus, ...]] = (DocumentStatus.embedding, DocumentStatus.indexed)

    def run(self, rt: Runtime, tenant: str, versions: dict[str, int]) -> StepResults:
        with doc_locks(rt, tenant, versions):
            rows = get_documents(rt.lake, tenant, list(versions))
            results, ready = triage(rows, versions, self.acts_on, idle=Mirrored(idle=True))
            if not ready:
                return results
            index = rt.index(fresh=True)
            gold = docs_chunks(rt.lake, tenant, list(ready), columns=["doc_id", "doc_version"], gold=index.gold)
            behind = sorted(
                {
                    d
                    for d, v in zip(
                        gold.column("doc_id").to_pylist(), gold.column("doc_version").to_pylist(), strict=True
                    )
                    if v != versions[d]
                }
            )
            if behind:
                # chunk_embed wrote these versions to the index a reindex just replaced: build them here for
                # the active index (vectors come from the old gold when the model is the same).
                full = get_documents(rt.lake, tenant, behind, with_text=True)
                plans = plan_rows(
                    rt, tenant, [full[d] for d in behind], index, cache_from=tuple(i.gold for i in rt.indexes())
                )
                replace_chunks(
                    rt.lake, index.gold, [(tenant, d) for d in behind], [r for p in plans.values() for r in p.rows]
                )
            written = mirror_documents(rt, index, tenant, _metadata(ready))
            update_documents(
                rt.lake, tenant, {d: versions[d] for d in ready}, status=DocumentStatus.indexed.value, error=None
            )
        results.update({d: Mirrored(vectors=n) for d, n in written.items()})
        return results

    def run_held(
        self,
        rt: Runtime,
        index: IndexSpec,
        tenant: str,
        rows: dict[str, dict[str, Any]],
        versions: dict[str, int],
        gold: dict[str, list[dict[str, Any]]],
    ) -> StepResults:
        """The step's vector-store work for documents chunk_embed has just written, in its lock hold.

        The caller holds the documents' locks, read their silver ``rows`` under them, checked that
        ``index`` is still the active one and wrote ``gold`` (doc_id → rows) to it: nothing here reads
        the lake again, and nothing here commits. The caller records the ``indexed`` status of the
        documents whose result is a non-idle ``Mirrored``, in its own silver commit. An error of the
        vector store is every ready document's error.
        """
        results, ready = triage(rows, versions, self.acts_on, idle=Mirrored(idle=True))
        if not ready:
            return results
        try:
            written = mirror_documents(rt, index, tenant, _metadata(ready), gold=gold)
        except Exception as e:  # the runner maps it per document, as an error of Mirror.run
            results.update(dict.fromkeys(ready, e))
            return results
        results.update({d: Mirrored(vectors=n) for d, n in written.items()})
        return results


def _metadata(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, MetadataValue]]:
    """doc_id → the metadata filters match, from silver rows."""
    return {d: json.loads(row["metadata_json"] or "{}") for d, row in rows.items()}
