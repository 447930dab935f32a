"""Reconcile repairs every kind of drift with the mirror step's own write: afterwards the store equals gold.

Real delta-rs tables, real LanceDB, the real model. Drift is injected into the store the way it
arises (a vector lost, an old version's vector left behind, a vector of a deleted or unknown
document, a vector at another version than gold's), and for the last test while reconcile runs.
"""

from __future__ import annotations

from pipelines.contracts.documents import DocumentStatus, VectorRecord
from pipelines.ingest.lifecycle import delete_document
from pipelines.lakehouse.documents import get_documents
from pipelines.ops.progress import Progress, ProgressState
from pipelines.ops.reconcile import ReconcileParams, reconcile
from pipelines.ops.tables import RestoreParams, restore
from pipelines.runtime import Runtime
from tests.steps import process_one, register_one

_AT_REST = (DocumentStatus.indexed, DocumentStatus.failed)


def _manual(parts: int, edit: str = "same") -> bytes:
    # One heading per part: one chunk per part, and an unchanged part keeps its chunk id across versions.
    return "\n".join(
        f"## Part {i}\n\nPart {i} explains ferry timetable {edit if i == 1 else 'same'}." for i in range(parts)
    ).encode()


def _add(rt: Runtime, doc_id: str, body: bytes) -> int:
    reg = register_one(rt, body, filename=f"{doc_id}.md", doc_id=doc_id)
    assert process_one(rt, "default", doc_id, reg.version).state == "done"
    return reg.version


def _gold_ids(rt: Runtime, doc_id: str) -> set[str]:
    rows = rt.lake.read(rt.index().gold, f"doc_id = '{doc_id}'", columns=["chunk_id"])
    return set(rows.column("chunk_id").to_pylist())


def _gold_at_rest(rt: Runtime) -> set[tuple[str, str, int]]:
    """(chunk id, doc id, version) of every gold row of a document at rest: what the store must hold."""
    rows = rt.lake.read(rt.index().gold, columns=["chunk_id", "doc_id", "doc_version"]).to_pylist()
    silver = get_documents(rt.lake, "default", sorted({r["doc_id"] for r in rows}))
    return {
        (r["chunk_id"], r["doc_id"], r["doc_version"])
        for r in rows
        if r["doc_id"] in silver and silver[r["doc_id"]]["status"] in _AT_REST
    }


def _stored(rt: Runtime, *, skip: tuple[str, ...] = ()) -> set[tuple[str, str, int]]:
    return {(s.id, s.doc_id, s.doc_version) for s in rt.vectors.iter_ids("default") if s.doc_id not in skip}


def _vector(rt: Runtime, chunk_id: str, doc_id: str, version: int) -> VectorRecord:
    return VectorRecord(
        id=chunk_id,
        tenant="default",
        doc_id=doc_id,
        doc_version=version,
        vector=rt.embedder().encode_query("a vector gold does not hold"),
        text="drift",
    )


def test_repair_leaves_the_store_equal_to_gold_for_every_kind_of_drift(runtime: Runtime) -> None:
    _add(runtime, "a", _manual(4))
    _add(runtime, "b", _manual(4, "one"))
    old_b = _gold_ids(runtime, "b")
    assert _add(runtime, "b", _manual(4, "two")) == 2
    (old_chunk,) = old_b - _gold_ids(runtime, "b")  # the edited part's chunk of version 1
    _add(runtime, "c", _manual(3))
    gold_before_delete = runtime.lake.table(runtime.index().gold).version()
    delete_document(runtime, "default", "c")
    # An operator restored gold alone: gold holds c's chunks again while silver says deleted.
    restore(runtime, RestoreParams(table="gold", version=gold_before_delete, reconcile=False))
    register_one(runtime, _manual(2), filename="d.md", doc_id="d")  # in flight: queued, never processed
    assert reconcile(runtime, ReconcileParams(repair=False)).clean

    store = runtime.vectors
    lost = sorted(_gold_ids(runtime, "a"))[0]
    store.delete([lost], tenant="default", doc_id="a")  # a: a missing id
    store.upsert([_vector(runtime, "a-extra", "a", 1)])  # a: an id gold does not have
    kept = sorted(_gold_ids(runtime, "b") & old_b)[0]
    store.upsert([_vector(runtime, kept, "b", 1)])  # b: an unchanged chunk at the old version
    store.upsert([_vector(runtime, old_chunk, "b", 1)])  # b: the old version's chunk left behind
    store.upsert([_vector(runtime, sorted(_gold_ids(runtime, "c"))[0], "c", 1)])  # c: deleted document
    store.upsert([_vector(runtime, "ghost-1", "ghost", 1)])  # no silver row, no gold row
    store.upsert([_vector(runtime, "d-early", "d", 1)])  # in flight: its mirror step decides

    found = reconcile(runtime, ReconcileParams(repair=False))
    assert (found.missing, found.stale, found.mismatched) == (1, 4, 1) and not found.repaired

    fixed = reconcile(runtime, ReconcileParams(repair=True))
    assert fixed.repaired and fixed.repaired_documents == 4  # a, b, c and ghost, each once
    assert _stored(runtime, skip=("d",)) == _gold_at_rest(runtime)
    assert store.document_ids("default", "c") == [] and store.document_ids("default", "ghost") == []
    assert store.document_ids("default", "d") == ["d-early"]  # documents in flight are not touched
    assert reconcile(runtime, ReconcileParams(repair=False)).clean


def test_repair_writes_what_gold_holds_when_it_repairs_not_what_the_scan_saw(runtime: Runtime) -> None:
    _add(runtime, "a", _manual(4, "one"))
    _add(runtime, "a", _manual(4, "two"))
    _add(runtime, "b", _manual(3))
    store = runtime.vectors
    lost = sorted(_gold_ids(runtime, "a"))[0]
    store.delete([lost], tenant="default", doc_id="a")  # the drift the scan finds

    def meanwhile(state: ProgressState) -> None:
        # Between the scan and the repair another process leaves a stray vector of the drifting document.
        if state.stage == "repairing" and not state.done:
            store.upsert([_vector(runtime, "a-late", "a", 2)])

    fixed = reconcile(runtime, ReconcileParams(repair=True), Progress(meanwhile))
    assert fixed.repaired and (fixed.missing, fixed.stale) == (1, 0)
    assert _stored(runtime) == _gold_at_rest(runtime)
    assert reconcile(runtime, ReconcileParams(repair=False)).clean
