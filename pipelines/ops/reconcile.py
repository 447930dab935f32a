"""Reconcile: compare an index's vector store with its gold table and repair the store.

Gold is the source of truth (DESIGN §4). The store should hold exactly the gold chunks of every
document at rest (``indexed`` or ``failed`` — a failed new version keeps serving its last good
chunks) at the same document version, and nothing of any other document (deleted, or unknown to
silver). Documents in flight are skipped: their gold is ahead of the store by design until the
mirror step runs.

The repair is the mirror step's own write (``mirror_documents``): under the document's lock each
drifting document at rest gets exactly its gold rows, stale ids deleted, and every other drifting
document loses all of its vectors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import ExitStack

from pydantic import BaseModel, Field, computed_field

from pipelines.contracts.documents import DocumentStatus
from pipelines.ingest.mirror import mirror_documents
from pipelines.lakehouse.documents import get_documents
from pipelines.lakehouse.indexes import IndexSpec, get_index
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime
from pipelines.vectorstore.mirror import remove_documents

__all__ = ["ReconcileParams", "ReconcileReport", "reconcile"]

_AT_REST = (DocumentStatus.indexed.value, DocumentStatus.failed.value)
_IN_FLIGHT = tuple(s.value for s in DocumentStatus if not s.terminal)
# Documents locked and repaired together: one gold read and one upsert per batch.
_BATCH = 200


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
    docs = rt.lake.read(DOCUMENTS, tenant_where, columns=["tenant", "doc_id", "status"]).to_pylist()
    status = {(d["tenant"], d["doc_id"]): d["status"] for d in docs}
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

    drifted: dict[str, set[str]] = defaultdict(set)
    for t, c in missing + mismatched:
        drifted[t].add(gold[(t, c)][0])
    for t, c in stale:
        drifted[t].add(stored[(t, c)][0])
    progress.stage("repairing", total=sum(len(d) for d in drifted.values()), unit="documents")
    for tenant, doc_ids in sorted(drifted.items()):
        ordered = sorted(doc_ids)
        for start in range(0, len(ordered), _BATCH):
            batch = ordered[start : start + _BATCH]
            written = _repair(rt, index, tenant, batch)
            progress.advance(len(batch), vectors_written=written)
    progress.finish()
    repaired = sum(len(d) for d in drifted.values())
    return report.model_copy(update={"repaired": True, "repaired_documents": repaired})


def _repair(rt: Runtime, index: IndexSpec, tenant: str, doc_ids: list[str]) -> int:
    """Make the index's store hold exactly gold's rows of these documents; returns the vectors written.

    Statuses are read again under the documents' locks (sorted order: no deadlock with another
    repair): a document that went in flight since the scan is left to its own mirror step, one at
    rest is mirrored, any other (deleted, or no silver row) loses every vector.
    """
    with ExitStack() as stack:
        for doc_id in doc_ids:
            stack.enter_context(rt.doc_lock(tenant, doc_id))
        rows = get_documents(rt.lake, tenant, doc_ids)
        at_rest = {d: r for d, r in rows.items() if r["status"] in _AT_REST}
        gone = [d for d in doc_ids if d not in rows or rows[d]["status"] not in (*_AT_REST, *_IN_FLIGHT)]
        written = (
            mirror_documents(rt, index, tenant, {d: json.loads(r["metadata_json"] or "{}") for d, r in at_rest.items()})
            if at_rest
            else {}
        )
        remove_documents([rt.vectors_for(index)], tenant, gone)
    return sum(written.values())
