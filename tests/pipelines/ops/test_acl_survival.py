"""A document's acl survives what rebuilds the vector store from gold: reindex (blue-green and vectors-only),
reconcile and restore — because gold carries it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pipelines.contracts.search import SearchQuery
from pipelines.lakehouse.documents import get_document
from pipelines.ops.reconcile import ReconcileParams, reconcile
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.ops.tables import RestoreParams, restore
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.stream.changes import patch_metadata
from tests.steps import apply_updates, process_one, register_one

SECRET = (
    b"# Incident 42\n\nThe payment gateway failed over to the standby region at 03:12.\n\n"
    b"## Cause\n\nAn expired certificate on the primary load balancer."
)
OPEN = b"# Canteen\n\nLentil soup and fresh bread are served every Monday from noon."
QUERY = "payment gateway failover expired certificate lentil soup"


def _ingest(rt: Runtime) -> None:
    for doc_id, data, acl in (("secret", SECRET, ["group:sre"]), ("open", OPEN, None)):
        result = register_one(rt, data, filename=f"{doc_id}.md", doc_id=doc_id, acl=acl)
        assert process_one(rt, "default", doc_id, result.version).state == "done"


def _seen(rt: Runtime, principals: list[str] | None = None, **query: object) -> set[str]:
    hits = search(rt, SearchQuery(query=QUERY, top_k=10, principals=principals or [], **query))  # type: ignore[arg-type]
    return {h.doc_id for h in hits}


def _assert_enforced(rt: Runtime) -> None:
    assert _seen(rt) == {"open"}
    assert _seen(rt, ["group:sre"]) == {"open", "secret"}
    assert _seen(rt, ["group:sre"], mode="keyword") == {"open", "secret"}
    assert _seen(rt, mode="hybrid") == {"open"}


def test_blue_green_reindex_carries_the_acl_into_the_new_index(runtime: Runtime) -> None:
    _ingest(runtime)
    report = reindex(runtime, ReindexParams(chunk_max_tokens=64, chunk_overlap_tokens=8))
    assert report.switched and runtime.index().index_id != "base"
    gold = runtime.lake.read(runtime.index().gold, columns=["doc_id", "acl"]).to_pylist()
    assert {g["doc_id"]: g["acl"] for g in gold} == {"secret": ["group:sre"], "open": None}
    _assert_enforced(runtime)


def test_vectors_only_reindex_restores_the_acl_from_gold(runtime: Runtime) -> None:
    _ingest(runtime)
    runtime.vectors.drop()  # the vector store is lost
    reindex(runtime, ReindexParams(vectors_only=True))
    _assert_enforced(runtime)


def test_reconcile_repairs_missing_vectors_with_their_acl(runtime: Runtime) -> None:
    _ingest(runtime)
    lost = runtime.vectors.document_ids("default", "secret")
    runtime.vectors.delete(lost, tenant="default", doc_id="secret")
    assert _seen(runtime, ["group:sre"]) == {"open"}
    assert reconcile(runtime, ReconcileParams(repair=True)).repaired
    _assert_enforced(runtime)


def test_an_acl_patch_survives_reconcile_and_an_edit(runtime: Runtime) -> None:
    _ingest(runtime)
    patch_metadata(runtime, "default", "open", None, acl=["user:ana"])
    apply_updates(runtime)
    assert _seen(runtime) == set() and _seen(runtime, ["user:ana"]) == {"open"}
    assert reconcile(runtime, ReconcileParams(repair=True)).clean
    edit = register_one(runtime, OPEN + b"\n\nOn Fridays: fish.", filename="open.md", doc_id="open")
    process_one(runtime, "default", "open", edit.version)
    assert get_document(runtime.lake, "default", "open")["acl"] == ["user:ana"]  # type: ignore[index]
    assert _seen(runtime) == set() and _seen(runtime, ["user:ana"]) == {"open"}


def test_restore_brings_back_the_acl_of_the_restored_version(runtime: Runtime) -> None:
    _ingest(runtime)
    time.sleep(0.01)
    before = datetime.now(UTC)
    time.sleep(0.01)
    patch_metadata(runtime, "default", "secret", None, acl=None)  # made public by mistake
    apply_updates(runtime)
    assert _seen(runtime) == {"open", "secret"}
    restore(runtime, RestoreParams(table="all", timestamp=before))
    assert get_document(runtime.lake, "default", "secret")["acl"] == ["group:sre"]  # type: ignore[index]
    _assert_enforced(runtime)
