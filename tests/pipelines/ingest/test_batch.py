"""Batch ingestion: many documents per step and per Delta commit, with each document's own outcome."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import InvalidInput
from pipelines.ingest import register as register_module
from pipelines.ingest.mirror import Mirrored
from pipelines.ingest.register import RegisterItem, register_objects
from pipelines.ingest.runner import process_inline
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, RAW_OBJECTS
from pipelines.runtime import Runtime
from tests.steps import process_one, register_one, run_named, run_one

SMALL = [
    "txt/unst__fake-text.txt",
    "txt/unst__norwich-city.txt",
    "md/unst__codeblock.md",
    "md/unst__simple-table.md",
    "txt/unst__UDHR_first_article_all.txt",
]


def _items(corpus: Path) -> list[RegisterItem]:
    return [RegisterItem(data=(corpus / rel).read_bytes(), filename=Path(rel).name) for rel in SMALL]


def _version(rt: Runtime, spec: object) -> int:
    return rt.lake.table(spec).version()  # type: ignore[arg-type]


def test_a_batch_is_indexed_like_single_uploads_with_one_commit_per_step(runtime: Runtime, corpus: Path) -> None:
    items = _items(corpus)
    runtime.lake.ensure_tables()
    silver0, gold0, bronze0 = (_version(runtime, s) for s in (DOCUMENTS, CHUNKS, RAW_OBJECTS))

    results = register_objects(runtime, items, tenant="batch")
    assert [r.status for r in results] == [DocumentStatus.queued] * len(items)
    versions = {r.doc_id: r.version for r in results}
    outcomes = process_inline(runtime, "batch", versions)
    assert {d: o.state for d, o in outcomes.items()} == dict.fromkeys(versions, "done")

    # register: 1 bronze + 1 silver; extract: 2 silver; chunk_embed + mirror: 1 gold + 1 silver (the mirror
    # runs in chunk_embed's lock hold and its `indexed` rides on chunk_embed's silver commit).
    assert _version(runtime, RAW_OBJECTS) - bronze0 == 1
    assert _version(runtime, DOCUMENTS) - silver0 == 4
    assert _version(runtime, CHUNKS) - gold0 == 1

    # The same files one by one in another tenant give the same chunks and vectors.
    for item, result in zip(items, results, strict=True):
        single = register_one(runtime, item.data, filename=item.filename, tenant="single")
        assert single.doc_id == result.doc_id
        assert process_one(runtime, "single", single.doc_id, single.version).state == "done"
        batch_doc = get_document(runtime.lake, "batch", result.doc_id)
        single_doc = get_document(runtime.lake, "single", single.doc_id)
        assert batch_doc is not None and single_doc is not None
        assert batch_doc["status"] == single_doc["status"] == DocumentStatus.indexed
        assert batch_doc["chunks"] == single_doc["chunks"] > 0
        b = doc_chunks(runtime.lake, "batch", result.doc_id).sort_by("ordinal").to_pylist()
        s = doc_chunks(runtime.lake, "single", single.doc_id).sort_by("ordinal").to_pylist()
        assert [r["text"] for r in b] == [r["text"] for r in s]
        np.testing.assert_allclose([r["embedding"] for r in b], [r["embedding"] for r in s], atol=1e-4)
        assert len(runtime.vectors.document_ids("batch", result.doc_id)) == len(b)
        # The embedding cache stays inside a tenant: the single upload embedded as many chunks as the batch.
        assert single_doc["chunks_embedded"] == batch_doc["chunks_embedded"]


def test_a_bad_file_fails_alone_and_duplicates_and_newer_versions_are_resolved_in_order(
    runtime: Runtime, corpus: Path
) -> None:
    good = (corpus / "txt/unst__fake-text.txt").read_bytes()
    items = [
        RegisterItem(data=good, filename="a.txt", doc_id="a", metadata={"team": "ops"}),
        RegisterItem(data=good, filename="a.txt", doc_id="a", metadata={"team": "ops"}),  # duplicate
        RegisterItem(data=(corpus / "pdf/unst__password.pdf").read_bytes(), filename="locked.pdf"),
        RegisterItem(data=b"first text of b", filename="b.txt", doc_id="b"),
        RegisterItem(data=b"second text of b, which wins", filename="b.txt", doc_id="b"),
    ]
    results = register_objects(runtime, items, tenant="t")
    assert [(r.doc_id, r.version, r.duplicate) for r in results][:2] == [("a", 1, False), ("a", 1, True)]
    assert [(r.doc_id, r.version) for r in results[3:]] == [("b", 1), ("b", 2)]
    locked = results[2].doc_id

    versions = {r.doc_id: r.version for r in results if not r.duplicate}  # b: its newest version
    outcomes = process_inline(runtime, "t", versions)
    assert outcomes["a"].state == outcomes["b"].state == "done"
    assert outcomes[locked].state == "failed" and (outcomes[locked].error or "").startswith("encrypted")

    failed = get_document(runtime.lake, "t", locked)
    assert failed is not None and failed["status"] == DocumentStatus.failed and failed["error"].startswith("encrypted")
    b = get_document(runtime.lake, "t", "b", with_text=True)
    assert b is not None and (b["version"], b["status"]) == (2, DocumentStatus.indexed)
    assert "which wins" in b["text"]
    a = get_document(runtime.lake, "t", "a")
    assert a is not None and json.loads(a["metadata_json"]) == {"team": "ops"}

    # The stale first version of b is skipped, not failed, if its own task arrives late.
    assert run_one(runtime, "extract", "t", "b", 1, can_retry=False).state == "skipped"


def test_a_version_superseded_mid_batch_is_skipped_and_the_rest_commit(runtime: Runtime) -> None:
    texts = {f"n{i}": f"Note {i}: the backup of shard {i} finished and was verified." for i in range(3)}
    results = register_objects(
        runtime, [RegisterItem(data=t.encode(), filename=f"{d}.txt", doc_id=d) for d, t in texts.items()]
    )
    versions = {r.doc_id: r.version for r in results}
    extracted = run_named(runtime, "extract", "default", versions, can_retry=False)
    assert all(o.state == "done" for o in extracted.values())
    newer = register_one(runtime, b"Note 1, rewritten before embedding.", filename="n1.txt", doc_id="n1")

    outcomes = run_named(runtime, "chunk_embed", "default", versions, can_retry=False)
    assert outcomes["n1"].state == "skipped" and outcomes["n0"].state == outcomes["n2"].state == "done"
    assert doc_chunks(runtime.lake, "default", "n1").num_rows == 0
    assert doc_chunks(runtime.lake, "default", "n0").num_rows == 1

    assert process_one(runtime, "default", "n1", newer.version).state == "done"
    mirrored = run_named(runtime, "mirror", "default", {"n0": 1, "n2": 1}, can_retry=False)
    assert {d: o.result.vectors for d, o in mirrored.items() if isinstance(o.result, Mirrored)} == {"n0": 1, "n2": 1}
    assert runtime.vectors.count("default") == 3


def test_an_invalid_item_rejects_the_call_before_anything_is_written(runtime: Runtime) -> None:
    items = [
        RegisterItem(data=b"fine", filename="ok.txt"),
        RegisterItem(data=b"bad id", filename="bad.txt", doc_id="../escape"),
    ]
    with pytest.raises(InvalidInput) as err:
        register_objects(runtime, items)
    assert err.value.doc_id == "../escape"
    runtime.lake.ensure_tables()
    assert runtime.lake.read(DOCUMENTS).num_rows == 0


def test_registration_slices_resolve_versions_across_their_boundaries(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(register_module, "_REGISTER_SLICE", 2)
    runtime.lake.ensure_tables()
    bronze0 = _version(runtime, RAW_OBJECTS)
    items = [
        RegisterItem(data=b"one", doc_id="x"),
        RegisterItem(data=b"other", doc_id="y"),
        RegisterItem(data=b"one", doc_id="x"),  # the next slice: a duplicate of the first item
        RegisterItem(data=b"two", doc_id="x"),
        RegisterItem(data=b"three", doc_id="x"),
    ]
    got = [(r.doc_id, r.version, r.duplicate) for r in register_objects(runtime, items)]
    assert got == [("x", 1, False), ("y", 1, False), ("x", 1, True), ("x", 2, False), ("x", 3, False)]
    assert _version(runtime, RAW_OBJECTS) - bronze0 == 3  # one bronze commit per slice
    x = get_document(runtime.lake, "default", "x")
    assert x is not None and x["version"] == 3
