"""The ingestion steps in-process against real Delta tables, LanceDB and the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.search import SearchQuery
from pipelines.errors import DocumentNotFound, EncryptedDocument, InvalidInput, StaleVersion
from pipelines.ingest.chunk_embed import Embedded
from pipelines.ingest.lifecycle import delete_document, find_stuck
from pipelines.ingest.runner import mark_failed
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from tests.steps import register_one, step_one


def _manual(sections: int, *, edited: int | None = None) -> bytes:
    parts = ["# Operations manual\n"]
    for i in range(sections):
        body = (
            f"Procedure {i} describes how the team restarts service {i} after an outage, "
            f"checks the replication lag of cluster {i}, and files the incident report."
        )
        if i == edited:
            body = f"Procedure {i} was rewritten: drain the load balancer, rotate the TLS keys, then page the lead."
        parts.append(f"## Section {i}\n\n{body}\n")
    return "\n".join(parts).encode()


def _process(rt: Runtime, doc_id: str, version: int) -> Embedded:
    assert step_one(rt, "extract", "default", doc_id, version)
    result = step_one(rt, "chunk_embed", "default", doc_id, version)
    assert isinstance(result, Embedded) and not result.idle
    step_one(rt, "mirror", "default", doc_id, version)
    return result


def _status(rt: Runtime, doc_id: str) -> str:
    row = get_document(rt.lake, "default", doc_id)
    assert row is not None
    return str(row["status"])


def test_register_extract_embed_mirror_search(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual(3), filename="manual.md", metadata={"team": "ops", "year": 2025})
    assert (reg.version, reg.status, reg.duplicate) == (1, DocumentStatus.queued, False)
    assert reg.doc_id.startswith("d")
    result = _process(runtime, reg.doc_id, 1)
    assert result.chunks == 3 and result.embedded == 3 and result.reused == 0
    assert _status(runtime, reg.doc_id) == "indexed"

    hits = search(runtime, SearchQuery(query="replication lag of cluster 2", top_k=3))
    assert hits[0].doc_id == reg.doc_id and "cluster 2" in hits[0].text
    assert hits[0].filename == "manual.md" and hits[0].version == 1
    assert hits[0].metadata == {"team": "ops", "year": 2025}
    assert search(runtime, SearchQuery(query="replication lag", filter={"team": "dev"})) == []
    assert len(search(runtime, SearchQuery(query="replication lag", filter={"year": 2025}))) == 3


def test_identical_bytes_are_a_noop_and_derive_the_same_id(runtime: Runtime) -> None:
    first = register_one(runtime, b"hello world, this is a note", filename="a.txt")
    again = register_one(runtime, b"hello world, this is a note", filename="copy.txt")
    assert again.duplicate and (again.doc_id, again.version) == (first.doc_id, first.version)


def test_edit_reembeds_only_changed_chunks(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual(34), filename="manual.md", doc_id="ops-manual")
    v1 = _process(runtime, "ops-manual", reg.version)
    assert v1.chunks == 34 and v1.embedded == 34
    ids_v1 = set(runtime.vectors.document_ids("default", "ops-manual"))
    before = runtime.embedder().embedded_total

    reg2 = register_one(runtime, _manual(34, edited=20), filename="manual.md", doc_id="ops-manual")
    assert reg2.version == 2 and not reg2.duplicate
    v2 = _process(runtime, "ops-manual", 2)

    assert (v2.chunks, v2.embedded, v2.reused, v2.removed) == (34, 1, 33, 1)
    assert runtime.embedder().embedded_total - before == 1  # the model really ran once
    ids_v2 = set(runtime.vectors.document_ids("default", "ops-manual"))
    assert len(ids_v1 - ids_v2) == 1 and len(ids_v2 - ids_v1) == 1  # the stale id is gone from LanceDB
    gold = doc_chunks(runtime.lake, "default", "ops-manual")
    assert gold.num_rows == 34 and set(gold.column("doc_version").to_pylist()) == {2}
    record = get_document(runtime.lake, "default", "ops-manual")
    assert record is not None and (record["chunks_embedded"], record["chunks_reused"]) == (1, 33)
    hit = search(runtime, SearchQuery(query="drain the load balancer and rotate the TLS keys", top_k=1))[0]
    assert hit.version == 2 and "rotate the TLS keys" in hit.text


def test_vectors_are_reused_across_documents(runtime: Runtime) -> None:
    shared = "## Shared\n\nEvery service must expose a health endpoint that answers within a second.\n"
    a = register_one(runtime, f"# A\n\nAlpha only.\n\n{shared}".encode(), filename="a.md")
    _process(runtime, a.doc_id, 1)
    b = register_one(runtime, f"# B\n\nBeta only.\n\n{shared}".encode(), filename="b.md")
    result = _process(runtime, b.doc_id, 1)
    assert result.chunks == 2 and result.reused == 1 and result.embedded == 1


def test_redelivered_steps_write_nothing_twice(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual(4), filename="m.md")
    _process(runtime, reg.doc_id, 1)
    gold_before = runtime.lake.read(CHUNKS).num_rows
    # The same chain delivered again: each step sees its work done.
    assert step_one(runtime, "extract", "default", reg.doc_id, 1).idle
    assert step_one(runtime, "chunk_embed", "default", reg.doc_id, 1).idle
    step_one(runtime, "mirror", "default", reg.doc_id, 1)
    assert runtime.lake.read(CHUNKS).num_rows == gold_before == 4
    assert runtime.vectors.count() == 4
    assert _status(runtime, reg.doc_id) == "indexed"


def test_delete_removes_everywhere_and_stales_inflight_steps(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual(2), filename="m.md", doc_id="gone")
    _process(runtime, "gone", 1)
    record = delete_document(runtime, "default", "gone")
    assert record.status == DocumentStatus.deleted and record.version == 2
    assert runtime.vectors.document_ids("default", "gone") == []
    assert doc_chunks(runtime.lake, "default", "gone").num_rows == 0
    assert all(h.doc_id != "gone" for h in search(runtime, SearchQuery(query="restarts service 1")))
    with pytest.raises(StaleVersion):
        step_one(runtime, "mirror", "default", "gone", reg.version)
    assert delete_document(runtime, "default", "gone").version == 2  # idempotent
    with pytest.raises(DocumentNotFound):
        delete_document(runtime, "default", "never-existed")
    # Uploading again after a delete brings the document back as a new version.
    again = register_one(runtime, _manual(2), filename="m.md", doc_id="gone")
    assert again.version == 3 and not again.duplicate


def test_unreadable_file_is_recorded_as_failed(runtime: Runtime, corpus: Path) -> None:
    data = (corpus / "pdf" / "unst__password.pdf").read_bytes()
    reg = register_one(runtime, data, filename="password.pdf")
    with pytest.raises(EncryptedDocument) as info:
        step_one(runtime, "extract", "default", reg.doc_id, 1)
    assert info.value.doc_id == reg.doc_id
    assert mark_failed(runtime, "default", {reg.doc_id: (1, info.value.describe())}) == {reg.doc_id}
    row = get_document(runtime.lake, "default", reg.doc_id)
    assert row is not None and row["status"] == "failed" and row["error"].startswith("encrypted:")


def test_bad_ids_and_metadata_are_rejected(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput):
        register_one(runtime, b"x", filename=None, doc_id="../../etc/passwd")
    with pytest.raises(InvalidInput):
        register_one(runtime, b"x", filename=None, metadata={"nested": {"a": 1}})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        register_one(runtime, b"x", filename=None, metadata={"a=b": "c"})


def test_stuck_documents_are_found(runtime: Runtime) -> None:
    reg = register_one(runtime, b"a queued document nobody processed", filename="q.txt")
    assert [s.doc_id for s in find_stuck(runtime, older_than_s=0)] == [reg.doc_id]
    assert find_stuck(runtime, older_than_s=3600) == []
