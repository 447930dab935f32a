"""Reindex (blue-green and in place), vectors-only rebuilds, reconcile, as_of search and /v1/jobs.

Real delta-rs tables, real LanceDB, the real model, documents from the shared corpus.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.contracts.documents import DocumentStatus, VectorRecord
from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.errors import InvalidInput
from pipelines.ingest.lifecycle import delete_document
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.indexes import BASE_INDEX, IndexState, get_index
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.ops.reconcile import ReconcileParams, reconcile
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.products.checks import evaluate
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.settings import Settings
from tests.steps import process_one, register_one, step_one

DOCS = ("md/readability__README.md", "txt/unst__book-war-and-peace-1p.txt", "md/unst__eng_spa_mult.md")


def _ingest(rt: Runtime, corpus: Path, names: tuple[str, ...] = DOCS) -> dict[str, str]:
    """Upload and fully process corpus files; returns file name -> doc id."""
    ids = {}
    for name in names:
        path = corpus / name
        reg = register_one(rt, path.read_bytes(), filename=path.name, metadata={"src": path.suffix})
        outcome = process_one(rt, "default", reg.doc_id, reg.version)
        assert outcome.state == "done", outcome
        ids[name] = reg.doc_id
    return ids


def _gold_ids(rt: Runtime) -> set[str]:
    return set(rt.lake.read(rt.index(fresh=True).gold, columns=["chunk_id"]).column("chunk_id").to_pylist())


QUERIES = ("reader view article extraction", "Prince Vasili and Anna Pavlovna", "hola idioma español")


def test_blue_green_reindex_switches_without_a_gap(runtime: Runtime, corpus: Path, embedder: Embedder) -> None:
    _ingest(runtime, corpus)
    old_index = runtime.index()
    old_ids = _gold_ids(runtime)
    before = {q: search(runtime, SearchQuery(query=q, top_k=3)) for q in QUERIES}
    assert all(before.values())

    # Searches keep running for the whole reindex: not one may come back empty.
    seen: list[set[str]] = []
    empty: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            for q in QUERIES:
                hits = search(runtime, SearchQuery(query=q, top_k=3))
                if not hits:
                    empty.append(q)
                seen.append({h.chunk_id for h in hits})

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        report = reindex(runtime, ReindexParams(chunk_max_tokens=96, chunk_overlap_tokens=16))
    finally:
        stop.set()
        thread.join()

    assert report.mode == "blue_green" and report.switched and report.previous_index_id == BASE_INDEX
    assert report.documents == 3 and report.embedded > 0 and report.remaining == 0
    assert empty == [] and len(seen) > 0
    new_index = runtime.index(fresh=True)
    assert new_index.index_id == report.index_id and new_index.chunker.max_tokens == 96
    retired = get_index(runtime.lake, BASE_INDEX)
    assert retired is not None and retired.state == IndexState.retired
    new_ids = _gold_ids(runtime)
    assert len(new_ids) > len(old_ids)  # smaller chunks: more of them
    # Every answer during the build came wholly from one index; after the switch, from the new chunks.
    assert all(s <= old_ids or s <= new_ids for s in seen)
    for q in QUERIES:
        after = search(runtime, SearchQuery(query=q, top_k=3))
        assert after and {h.chunk_id for h in after} <= new_ids
        assert after[0].doc_id == before[q][0].doc_id  # same document wins, from its new chunks
    # The old index still exists until dropped (its vectors answer nothing now but are kept).
    assert runtime.vectors_for(old_index).count() == len(old_ids)
    # Silver describes the new index: each document's chunk count is its rows in the new gold, and
    # the data-product check that compares them passes.
    per_doc = Counter(r["doc_id"] for r in runtime.lake.read(new_index.gold, columns=["doc_id"]).to_pylist())
    silver = runtime.lake.read(DOCUMENTS, "status = 'indexed'", columns=["doc_id", "chunks", "chunker_id"]).to_pylist()
    assert {r["doc_id"]: r["chunks"] for r in silver} == dict(per_doc)
    assert {r["chunker_id"] for r in silver} == {new_index.chunker.config_id}
    counts = next(
        c for r in evaluate(runtime) if r.product == "documents" for c in r.results if c.check == "chunk_counts_match"
    )
    assert counts.ok

    # Running the same reindex again resumes/skips: nothing to build, nothing embedded.
    embedded_before = embedder.embedded_total
    again = reindex(runtime, ReindexParams(chunk_max_tokens=96, chunk_overlap_tokens=16, drop_old=True))
    assert again.mode == "in_place" and again.embedded == 0 and again.dropped == [BASE_INDEX]
    assert embedder.embedded_total == embedded_before
    assert runtime.vectors_for(old_index).count() == 0
    dropped = get_index(runtime.lake, BASE_INDEX)
    assert dropped is not None and dropped.state == IndexState.dropped


def test_interrupted_reindex_resumes_where_it_stopped(runtime: Runtime, corpus: Path) -> None:
    ids = _ingest(runtime, corpus)
    # A scoped run builds part of the new index and must not switch to a half-built one.
    first = reindex(runtime, ReindexParams(tenant="default", doc_ids=[ids[DOCS[0]]], chunk_max_tokens=128))
    assert first.documents == 1 and not first.switched and first.remaining == 2
    assert runtime.index(fresh=True).index_id == BASE_INDEX
    second = reindex(runtime, ReindexParams(chunk_max_tokens=128))
    assert second.index_id == first.index_id and second.skipped == 1 and second.documents == 2 and second.switched


def test_vectors_only_rebuilds_the_store_without_embedding(runtime: Runtime, corpus: Path, embedder: Embedder) -> None:
    _ingest(runtime, corpus)
    before = {q: [(h.chunk_id, h.score) for h in search(runtime, SearchQuery(query=q, top_k=5))] for q in QUERIES}
    count = runtime.vectors.count()
    runtime.vectors.drop()  # the vector store is lost
    assert runtime.vectors.count() == 0
    assert search(runtime, SearchQuery(query=QUERIES[0])) == []

    embedded_before = embedder.embedded_total
    report = reindex(runtime, ReindexParams(vectors_only=True))
    assert report.mode == "vectors_only" and report.vectors == count and report.embedded == 0
    # Only the queries below embed anything: the rebuild itself computed zero embeddings.
    assert embedder.embedded_total == embedded_before
    for q, hits in before.items():
        after = [(h.chunk_id, h.score) for h in search(runtime, SearchQuery(query=q, top_k=5))]
        assert [c for c, _ in after] == [c for c, _ in hits]
        assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(after, hits, strict=True))


def test_reconcile_finds_and_repairs_injected_drift(runtime: Runtime, corpus: Path) -> None:
    ids = _ingest(runtime, corpus)
    assert reconcile(runtime, ReconcileParams(repair=False)).clean

    doc = ids[DOCS[0]]
    victims = runtime.vectors.document_ids("default", doc)[:2]
    runtime.vectors.delete(victims, tenant="default", doc_id=doc)  # missing ids
    ghost = VectorRecord(
        id="cghost",
        tenant="default",
        doc_id="dghost",
        doc_version=1,
        vector=[0.1] * 384,
        text="ghost",
        filename=None,
        page_start=None,
        page_end=None,
        char_start=0,
        char_end=5,
    )
    runtime.vectors.upsert([ghost])  # a stale id: no gold row, no document

    found = reconcile(runtime, ReconcileParams(repair=False))
    assert not found.clean and (found.missing, found.stale) == (2, 1) and not found.repaired
    assert set(found.examples) >= {*victims, "cghost"}
    assert reconcile(runtime, ReconcileParams(repair=False)).missing == 2  # a dry run changes nothing

    fixed = reconcile(runtime, ReconcileParams(repair=True))
    assert fixed.repaired and fixed.repaired_documents == 2
    assert reconcile(runtime, ReconcileParams(repair=False)).clean
    assert set(victims) <= set(runtime.vectors.document_ids("default", doc))
    assert runtime.vectors.document_ids("default", "dghost") == []


def test_as_of_search_sees_a_deleted_document_only_before_the_delete(runtime: Runtime, corpus: Path) -> None:
    ids = _ingest(runtime, corpus)
    doc = ids[DOCS[1]]
    query = "Prince Vasili and Anna Pavlovna"
    version_before = runtime.lake.table(runtime.index().gold).version()
    time.sleep(0.05)
    moment_before = datetime.now(UTC)
    time.sleep(0.05)
    delete_document(runtime, "default", doc)
    version_after = runtime.lake.table(runtime.index().gold).version()
    assert version_after > version_before

    assert doc not in {h.doc_id for h in search(runtime, SearchQuery(query=query))}
    then = search(runtime, SearchQuery(query=query, top_k=3, as_of=version_before))
    assert then and then[0].doc_id == doc and "Anna" in then[0].text
    by_time = search(runtime, SearchQuery(query=query, top_k=3, as_of=moment_before))
    assert by_time and by_time[0].doc_id == doc
    now = search(runtime, SearchQuery(query=query, top_k=10, as_of=version_after))
    assert now and doc not in {h.doc_id for h in now}
    # Filters apply to the snapshot too; the tenant boundary holds.
    assert search(runtime, SearchQuery(query=query, as_of=version_before, filter={"src": ".nope"})) == []
    from pipelines.serve.timetravel import search_as_of

    assert search_as_of(runtime, SearchQuery(query=query, as_of=version_before), tenant="other") == []
    with pytest.raises(InvalidInput):
        search(runtime, SearchQuery(query=query, as_of=version_after + 100))
    with pytest.raises(InvalidInput):
        search(runtime, SearchQuery(query=query, as_of=datetime(2000, 1, 1, tzinfo=UTC)))


def test_a_step_that_raced_an_index_switch_lands_in_the_new_index(runtime: Runtime, corpus: Path) -> None:
    _ingest(runtime, corpus, DOCS[:1])
    path = corpus / DOCS[1]
    reg = register_one(runtime, path.read_bytes(), filename=path.name)
    assert step_one(runtime, "extract", "default", reg.doc_id, reg.version)
    assert step_one(runtime, "chunk_embed", "default", reg.doc_id, reg.version)  # written to the old index
    report = reindex(runtime, ReindexParams(chunk_max_tokens=128))
    assert report.switched
    step_one(runtime, "mirror", "default", reg.doc_id, reg.version)  # mirrors into the new one
    row = get_document(runtime.lake, "default", reg.doc_id)
    assert row is not None and row["status"] == DocumentStatus.indexed
    hits = search(runtime, SearchQuery(query="Prince Vasili and Anna Pavlovna", top_k=3))
    assert hits and hits[0].doc_id == reg.doc_id and {h.chunk_id for h in hits} <= _gold_ids(runtime)
    assert reconcile(runtime, ReconcileParams(repair=False)).clean


def test_reindex_rejects_bad_options(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput):
        reindex(runtime, ReindexParams(vectors_only=True, chunk_max_tokens=64))
    with pytest.raises(InvalidInput):
        reindex(runtime, ReindexParams(doc_ids=["x"]))
    with pytest.raises(InvalidInput):
        reindex(runtime, ReindexParams(model_path="/nonexistent/model", model_id="x"))
    with pytest.raises(InvalidInput):
        reindex(runtime, ReindexParams(chunk_max_tokens=64, chunk_overlap_tokens=40))


def test_jobs_api_runs_reconcile_and_reindex(inline_api: TestClient, corpus: Path) -> None:
    path = corpus / DOCS[2]
    up = inline_api.post("/v1/documents", files={"file": (path.name, path.read_bytes())})
    assert up.status_code in (200, 201, 202), up.text

    def wait(job_id: str) -> dict[str, object]:
        for _ in range(600):
            record: dict[str, object] = inline_api.get(f"/v1/jobs/{job_id}").json()
            if record["status"] != "running":
                return record
            time.sleep(0.1)
        raise AssertionError("job did not finish")

    # as_of over HTTP: gold version 0 is the empty table; a version from the future is a 422 problem.
    assert inline_api.post("/v1/search", json={"query": "hola", "as_of": 0}).json()["results"] == []
    live = inline_api.post("/v1/search", json={"query": "hola"}).json()["results"]
    assert live and inline_api.post("/v1/search", json={"query": "hola", "as_of": 10_000}).status_code == 422

    started = inline_api.post("/v1/jobs", json={"kind": "reconcile", "params": {"repair": False}})
    assert started.status_code == 202, started.text
    done = wait(started.json()["job_id"])
    assert done["status"] == "succeeded" and done["result"]["clean"] is True  # type: ignore[index]

    job = inline_api.post("/v1/jobs", json={"kind": "reindex", "params": {"vectors_only": True}}).json()
    done = wait(job["job_id"])
    assert done["status"] == "succeeded" and done["result"]["vectors"] > 0  # type: ignore[index]
    assert done["progress"]["stage"]  # type: ignore[index]
    assert [j["job_id"] for j in inline_api.get("/v1/jobs").json()][:2] == [job["job_id"], started.json()["job_id"]]

    assert inline_api.post("/v1/jobs", json={"kind": "explode"}).status_code == 422
    bad = inline_api.post("/v1/jobs", json={"kind": "reindex", "params": {"chunk_max_tokens": 1}})
    assert bad.status_code == 422 and "chunk_max_tokens" in bad.text
    assert inline_api.get("/v1/jobs/0123abcd").status_code == 404
    failed = inline_api.post("/v1/jobs", json={"kind": "reindex", "params": {"doc_ids": ["x"]}}).json()
    record = wait(failed["job_id"])
    assert record["status"] == "failed" and "doc_ids need a tenant" in str(record["error"])


def test_cli_reconcile_exit_code_says_whether_it_was_clean(runtime: Runtime, corpus: Path) -> None:
    import json

    from typer.testing import CliRunner

    from app.cli import cli

    ids = _ingest(runtime, corpus, DOCS[2:])
    env = {"DOCLAKE_DATA_DIR": str(runtime.settings.data_dir)}
    runner = CliRunner()
    clean = runner.invoke(cli, ["reconcile", "--json", "--no-repair"], env=env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["clean"] is True

    runtime.vectors.delete_document("default", ids[DOCS[2]])
    drift = runner.invoke(cli, ["reconcile"], env=env)
    assert drift.exit_code == 1 and "repaired" in drift.stdout and "missing" in drift.stdout
    assert runner.invoke(cli, ["reconcile", "--no-repair"], env=env).exit_code == 0

    listed = runner.invoke(cli, ["indexes", "--json"], env=env)
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["state"] == "active"
    bad = runner.invoke(cli, ["reindex", "--doc-id", "x"], env=env)
    assert bad.exit_code == 2 and "doc_ids need a tenant" in bad.output


def test_a_torch_lake_moves_to_onnx_int8_by_reindex_into_a_new_index(
    settings: Settings, embedder: Embedder, torch_embedder: Embedder, corpus: Path
) -> None:
    rt = Runtime.from_settings(settings.model_copy(update={"embed_backend": "torch"}))  # a lake from before int8
    assert rt.embedder() is torch_embedder and rt.index().embed_backend == "torch"
    _ingest(rt, corpus, DOCS[1:2])
    report = reindex(rt, ReindexParams(embed_backend="onnx-int8"))
    index = rt.index(fresh=True)
    assert report.switched and index.embed_backend == "onnx-int8"
    assert index.model_id == f"{settings.model_id}+onnx-int8"
    # torch vectors are never reused for int8: every chunk was embedded again, by the int8 model.
    assert report.embedded == report.chunks > 0 and rt.embedder() is embedder  # the default int8 model
    hits = search(rt, SearchQuery(query="Prince Vasili and Anna Pavlovna", top_k=1))
    assert hits and "Anna" in hits[0].text
    back = reindex(rt, ReindexParams(embed_backend="torch"))  # switching back finds the retired base index
    assert back.index_id == BASE_INDEX and back.switched and back.embedded == 0


def test_readers_see_a_switch_by_another_process_without_reading_the_registry_per_query(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import runtime as runtime_module
    from pipelines.lakehouse.indexes import IndexSpec, activate_index, put_index

    base = runtime.index(fresh=True)
    other = base.model_copy(update={"index_id": "iswitchtest", "state": IndexState.building})
    put_index(runtime.lake, IndexSpec.model_validate(other.model_dump()))
    reads = []
    real = runtime_module.read_active_index
    monkeypatch.setattr(runtime_module, "read_active_index", lambda lake: reads.append(1) or real(lake))

    activate_index(runtime.lake, "iswitchtest")  # as another process would: this one's copy is now stale
    assert runtime.index().index_id == BASE_INDEX  # within the TTL the copy is trusted, nothing read
    assert reads == []
    monkeypatch.setattr(runtime_module, "_INDEX_TTL_S", 0.0)
    assert runtime.index().index_id == BASE_INDEX  # expired: answered from the copy, re-read behind it
    deadline = time.monotonic() + 10
    while runtime.index().index_id != "iswitchtest":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert reads  # the switch arrived through background re-reads
    monkeypatch.setattr(runtime_module, "_INDEX_STALE_MAX_S", 0.0)
    reads.clear()
    runtime.index()  # too old to trust: read inline
    assert reads
