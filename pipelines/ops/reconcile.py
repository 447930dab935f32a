"""Reconcile: compare an index's vector store with its gold table and repair the store.

Gold is the source of truth (DESIGN §4). The store should hold exactly the gold chunks of every
document at rest (``indexed`` or ``failed`` — a failed new version keeps serving its last good
chunks) at the same document version. Documents in flight are skipped: their gold is ahead of the
store by design until the mirror step runs.
"""

from __future__ import annotations

import json
from collections import defaultdict

from pydantic import BaseModel, Field, computed_field

from pipelines.contracts.documents import DocumentStatus
from pipelines.ingest.mirror import vector_records
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.indexes import IndexSpec, get_index
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime

__all__ = ["ReconcileParams", "ReconcileReport", "reconcile"]

_AT_REST = (DocumentStatus.indexed.value, DocumentStatus.failed.value)
_IN_FLIGHT = tuple(s.value for s in DocumentStatus if not s.terminal)


class ReconcileParams(BaseModel):
    repair: bool = Field(default=True, description="Fix the drift found (else only report it).")
    tenant: str | None = Field(default=None, description="Only this tenant (default: all).")
    index_id: str | None = Field(default=None, description="Index to reconcile (default: the active one).")


class ReconcileReport(BaseModel):
    index_id: str
    documents: int = Field(description="Documents at rest compared.")
    gold_chunks: int = Field(description="Gold chunks of those documents.")
    vectors: int = Field(description="Vectors in the store (in-flight documents excluded).")
    missing: int = Field(description="Gold chunks with no vector.")
    stale: int = Field(description="Vectors with no gold chunk (deleted documents, old versions).")
    mismatched: int = Field(description="Vectors of another document version than gold's.")
    repaired_documents: int = Field(default=0, description="Documents whose vectors were rewritten.")
    repaired: bool = Field(default=False, description="Whether the drift was repaired.")
    examples: list[str] = Field(default_factory=list, description="A few drifting chunk ids.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clean(self) -> bool:
        """No drift was found (before any repair)."""
        return self.missing == 0 and self.stale == 0 and self.mismatched == 0


def _index(rt: Runtime, index_id: str | None) -> IndexSpec:
    if index_id is None:
        return rt.index(fresh=True)
    found = get_index(rt.lake, index_id)
    if found is None:
        from pipelines.errors import InvalidInput

        raise InvalidInput(f"no index {index_id!r}")
    return found


def reconcile(rt: Runtime, params: ReconcileParams, progress: Progress | None = None) -> ReconcileReport:
    """Find (and with ``repair``, fix) drift between the index's vector store and its gold table."""
    progress = progress or Progress()
    index = _index(rt, params.index_id)
    store = rt.vectors_for(index)
    tenant_where = f"tenant = {sql_quote(params.tenant)}" if params.tenant else None

    progress.stage("reading gold", unit="tables")
    docs = rt.lake.read(DOCUMENTS, tenant_where, columns=["tenant", "doc_id", "status", "metadata_json"]).to_pylist()
    status = {(d["tenant"], d["doc_id"]): d["status"] for d in docs}
    metadata = {(d["tenant"], d["doc_id"]): d["metadata_json"] for d in docs}
    gold_rows = rt.lake.read(index.gold, tenant_where, columns=["tenant", "chunk_id", "doc_id", "doc_version"])
    gold: dict[tuple[str, str], tuple[str, int]] = {}
    for r in gold_rows.to_pylist():
        if status.get((r["tenant"], r["doc_id"])) in _AT_REST:
            gold[(r["tenant"], r["chunk_id"])] = (r["doc_id"], r["doc_version"])

    progress.stage("reading vectors", unit="vectors")
    stored: dict[tuple[str, str], tuple[str, int]] = {}
    for s in store.iter_ids(params.tenant):
        if status.get((s.tenant, s.doc_id)) not in _IN_FLIGHT:
            stored[(s.tenant, s.id)] = (s.doc_id, s.doc_version)

    missing = [k for k in gold if k not in stored]
    stale = [k for k in stored if k not in gold]
    # Stores that cannot report a version (Pinecone ids carry none) report 0: only compare known ones.
    mismatched = [k for k, (_, v) in stored.items() if k in gold and v and v != gold[k][1]]
    report = ReconcileReport(
        index_id=index.index_id,
        documents=sum(1 for s in status.values() if s in _AT_REST),
        gold_chunks=len(gold),
        vectors=len(stored),
        missing=len(missing),
        stale=len(stale),
        mismatched=len(mismatched),
        examples=[k[1] for k in (missing + stale + mismatched)[:5]],
    )
    if not params.repair or report.clean:
        return report

    to_mirror: set[tuple[str, str]] = {(t, gold[(t, c)][0]) for t, c in missing + mismatched}
    to_delete: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t, c in stale:
        to_delete[(t, stored[(t, c)][0])].append(c)
    progress.stage("repairing", total=len(to_mirror) + len(to_delete), unit="documents")
    for tenant, doc_id in sorted(to_mirror):
        with rt.doc_lock(tenant, doc_id):
            rows = doc_chunks(rt.lake, tenant, doc_id, gold=index.gold).to_pylist()
            meta = json.loads(metadata.get((tenant, doc_id)) or "{}")
            store.upsert(vector_records(rows, meta))
        progress.advance(1, vectors_written=len(rows))
    for (tenant, doc_id), ids in sorted(to_delete.items()):
        with rt.doc_lock(tenant, doc_id):
            store.delete(ids, tenant=tenant, doc_id=doc_id)
        progress.advance(1, vectors_deleted=len(ids))
    progress.finish()
    return report.model_copy(update={"repaired": True, "repaired_documents": len(to_mirror) + len(to_delete)})
