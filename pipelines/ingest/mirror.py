"""The mirror step: make the vector store hold exactly a document's gold rows, then mark it indexed."""

from __future__ import annotations

import json
from typing import Any

from pipelines.contracts.documents import (
    DocumentStatus,
    VectorRecord,
)
from pipelines.contracts.ids import MetadataValue
from pipelines.ingest.guards import Results, doc_locks, single_result, triage
from pipelines.ingest.plan import plan_rows
from pipelines.lakehouse.chunks import docs_chunks
from pipelines.lakehouse.documents import (
    get_documents,
    update_documents,
)
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.writer import replace_chunks
from pipelines.runtime import Runtime
from pipelines.vectorstore.mirror import sync_documents

__all__ = ["mirror_document", "mirror_documents", "mirror_many", "mirror_step", "vector_records"]


def vector_records(gold_rows: list[dict[str, Any]], metadata: dict[str, MetadataValue]) -> list[VectorRecord]:
    """Vector-store records of gold rows (one document's metadata applies to all of them)."""
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
        )
        for g in gold_rows
    ]


def mirror_document(rt: Runtime, index: IndexSpec, tenant: str, doc_id: str, metadata: dict[str, MetadataValue]) -> int:
    """Make the index's vector store hold exactly the document's gold rows of that index.

    Upsert first, delete stale ids second: search never sees the document without vectors.
    """
    return mirror_documents(rt, index, tenant, {doc_id: metadata})[doc_id]


def mirror_documents(
    rt: Runtime, index: IndexSpec, tenant: str, metadata: dict[str, dict[str, MetadataValue]]
) -> dict[str, int]:
    """``mirror_document`` for many documents (doc_id → its metadata): one gold read, one upsert."""
    gold = docs_chunks(rt.lake, tenant, list(metadata), gold=index.gold).to_pylist()
    by_doc: dict[str, list[dict[str, Any]]] = {d: [] for d in metadata}
    for g in gold:
        by_doc[g["doc_id"]].append(g)
    records = {d: vector_records(rows, metadata[d]) for d, rows in by_doc.items()}
    return sync_documents(rt.vectors_for(index), tenant, records)


def mirror_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> int:
    """Mirror the document's gold rows to the vector store, drop its stale ids, mark it indexed.

    Returns how many vectors were written (0 when already indexed).
    """
    written: int = single_result(mirror_many(rt, tenant, {doc_id: version}), doc_id)
    return written


def mirror_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``mirror_step`` for many documents: one gold read, one upsert, one silver commit."""
    with doc_locks(rt, tenant, versions):
        rows = get_documents(rt.lake, tenant, list(versions))
        results, ready = triage(rows, versions, (DocumentStatus.embedding, DocumentStatus.indexed), idle=0)
        if not ready:
            return results
        index = rt.index(fresh=True)
        gold = docs_chunks(rt.lake, tenant, list(ready), columns=["doc_id", "doc_version"], gold=index.gold)
        behind = sorted(
            {
                d
                for d, v in zip(gold.column("doc_id").to_pylist(), gold.column("doc_version").to_pylist(), strict=True)
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
        written = mirror_documents(
            rt, index, tenant, {d: json.loads(row["metadata_json"] or "{}") for d, row in ready.items()}
        )
        update_documents(
            rt.lake, tenant, {d: versions[d] for d in ready}, status=DocumentStatus.indexed.value, error=None
        )
    results.update(written)
    return results
