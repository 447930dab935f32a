"""Attachments (archive members, e-mail attachments) are readable by exactly whom their container is."""

from __future__ import annotations

from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.contracts.search import SearchQuery
from pipelines.ingest.runner import process_inline
from pipelines.lakehouse.documents import get_children
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.stream.changes import patch_metadata
from tests.attachments import zip_of
from tests.steps import apply_updates, register_one

T = DEFAULT_TENANT
ARCHIVE = zip_of(
    {
        "merger.txt": b"Project Osprey: the merger closes on the first of March.",
        "notes/budget.txt": b"Budget line for the osprey nest camera: four hundred euros.",
    }
)


def _ingest(rt: Runtime, data: bytes, **kw: object) -> str:
    result = register_one(rt, data, filename="deal.zip", doc_id="deal", **kw)  # type: ignore[arg-type]
    outcomes = process_inline(rt, T, {result.doc_id: result.version})
    assert outcomes["deal"].state == "done", outcomes
    return result.doc_id


def _children_acl(rt: Runtime) -> dict[str, list[str] | None]:
    return {row["filename"]: row["acl"] for row in get_children(rt.lake, T, ["deal"]).get("deal", [])}


def _found(rt: Runtime, principals: list[str]) -> set[str]:
    query = SearchQuery(query="osprey merger budget", top_k=10, mode="keyword", principals=principals)
    return {h.doc_id for h in search(rt, query)}


def test_children_inherit_the_container_acl_and_follow_its_changes(runtime: Runtime) -> None:
    _ingest(runtime, ARCHIVE, acl=["group:legal"])
    assert _children_acl(runtime) == {"merger.txt": ["group:legal"], "budget.txt": ["group:legal"]}
    children = {row["doc_id"] for row in get_children(runtime.lake, T, ["deal"])["deal"]}
    assert _found(runtime, []) == set()
    assert _found(runtime, ["group:legal"]) == {"deal", *children}

    # A new version of the container with another acl gives its (unchanged) children the new acl.
    _ingest(runtime, ARCHIVE, acl=["group:board"])
    assert _children_acl(runtime) == {"merger.txt": ["group:board"], "budget.txt": ["group:board"]}
    assert _found(runtime, ["group:legal"]) == set()

    # A PATCH of the container's acl reaches its attachments through the same update stream.
    patch_metadata(runtime, T, "deal", None, acl=None)
    apply_updates(runtime)
    assert _children_acl(runtime) == {"merger.txt": None, "budget.txt": None}
    assert _found(runtime, []) == {"deal", *children}
