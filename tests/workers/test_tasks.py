"""The Celery tasks' own policy: chunk_embed mirrors in the same task; a failed mirror retries alone;
a document that needs OCR leaves the extract queue for the OCR lane.

The tasks run in this process on the test's runtime (no worker, no broker); what they would send to
the broker is recorded by replacing the one dispatch function they call (what dispatch sends is in
test_dispatch.py). The end-to-end tests run the same tasks in real workers over the real broker.
"""

from __future__ import annotations

import lancedb
import pytest
from celery.exceptions import Ignore

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.search import SearchQuery
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, TableSpec
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.vectorstore.lance import LanceVectorStore
from tests.doubles.failing_store import FailingStore
from tests.scans import image_pdf, text_image
from tests.steps import register_one, step_one
from workers import dispatch, tasks

_TEXT = "\n".join(f"## Part {i}\n\nPart {i} explains how the ferry schedule changes in winter." for i in range(4))


@pytest.fixture()
def sent(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """Run the tasks on the test's runtime; collect the mirror tasks they would enqueue."""
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    mirrors: list[tuple[str, str, int]] = []

    def enqueue_mirror(tenant: str, doc_id: str, version: int, *, countdown: float | None = None) -> None:
        mirrors.append((tenant, doc_id, version))

    monkeypatch.setattr(dispatch, "enqueue_mirror", enqueue_mirror)
    return mirrors


def _extracted(rt: Runtime, doc_id: str) -> int:
    reg = register_one(rt, _TEXT.encode(), filename=f"{doc_id}.md", doc_id=doc_id)
    assert step_one(rt, "extract", "default", doc_id, reg.version)
    return reg.version


def _gold_ids(rt: Runtime, doc_id: str) -> list[str]:
    return sorted(doc_chunks(rt.lake, "default", doc_id, columns=["chunk_id"]).column("chunk_id").to_pylist())


def _status(rt: Runtime, doc_id: str) -> str:
    row = get_document(rt.lake, "default", doc_id)
    assert row is not None
    return str(row["status"])


def test_chunk_embed_task_leaves_the_document_searchable(runtime: Runtime, sent: list[tuple[str, str, int]]) -> None:
    version = _extracted(runtime, "ferry")
    result = tasks.chunk_embed("default", "ferry", version)
    assert result is not None and result["chunks"] == len(_gold_ids(runtime, "ferry")) > 0
    assert _status(runtime, "ferry") == DocumentStatus.indexed
    assert sorted(runtime.vectors.document_ids("default", "ferry")) == _gold_ids(runtime, "ferry")
    assert sent == []  # nothing left for another task
    # A duplicate delivery finds the step done: it embeds and mirrors nothing.
    embedded = runtime.embedder().embedded_total
    assert tasks.chunk_embed("default", "ferry", version) is None
    assert runtime.embedder().embedded_total == embedded and sent == []


def _history(rt: Runtime, spec: TableSpec) -> int:
    return rt.lake.table(spec).version()


def test_chunk_embed_and_its_mirror_cost_one_silver_commit(runtime: Runtime, sent: list[tuple[str, str, int]]) -> None:
    """The mirror runs in chunk_embed's lock hold: one gold commit and one silver commit per document, and
    that silver commit holds the chunk counts and the ``indexed`` status together."""
    version = _extracted(runtime, "once")
    silver0, gold0 = _history(runtime, DOCUMENTS), _history(runtime, CHUNKS)
    assert tasks.chunk_embed("default", "once", version) is not None
    assert _history(runtime, DOCUMENTS) - silver0 == 1
    assert _history(runtime, CHUNKS) - gold0 == 1
    committed = runtime.lake.snapshot(DOCUMENTS, version=silver0 + 1).to_pyarrow_table().to_pylist()
    row = next(r for r in committed if r["doc_id"] == "once")
    assert row["status"] == DocumentStatus.indexed and row["error"] is None
    assert row["chunks"] == len(_gold_ids(runtime, "once")) > 0 and row["model_id"]
    assert sorted(runtime.vectors.document_ids("default", "once")) == _gold_ids(runtime, "once")
    assert sent == []
    # The same for a batch: one silver commit for all its documents.
    versions = {d: _extracted(runtime, d) for d in ("c1", "c2")}
    silver0 = _history(runtime, DOCUMENTS)
    assert tasks.chunk_embed_batch(versions, "default") == versions
    assert _history(runtime, DOCUMENTS) - silver0 == 1
    assert all(_status(runtime, d) == DocumentStatus.indexed for d in versions)


def _flaky(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tasks in another process on the same lake, whose vector store fails on the next upsert."""
    flaky = Runtime.from_settings(
        rt.settings, vector_store=lambda index: FailingStore(rt.vectors_for(index), failures=1, on="upsert")
    )
    monkeypatch.setattr(tasks, "runtime", lambda: flaky)


def _table_version(rt: Runtime) -> int:
    """The LanceDB table's version: it moves on every write."""
    store = rt.vectors
    assert isinstance(store, LanceVectorStore)
    version: int = lancedb.connect(store.path).open_table(store.table_name).version
    return version


def test_a_failed_mirror_is_retried_by_a_mirror_task_alone(
    runtime: Runtime, sent: list[tuple[str, str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _extracted(runtime, "flaky")
    real = runtime.vectors
    _flaky(runtime, monkeypatch)
    silver0 = _history(runtime, DOCUMENTS)
    assert tasks.chunk_embed("default", "flaky", version) is not None  # the embedding itself succeeded
    assert _status(runtime, "flaky") == DocumentStatus.embedding  # not indexed, not lost
    row = get_document(runtime.lake, "default", "flaky")
    assert row is not None and row["chunks"] == len(_gold_ids(runtime, "flaky")) > 0  # the embedding is recorded
    assert _history(runtime, DOCUMENTS) - silver0 == 1  # in one commit, as when the mirror succeeds
    assert real.document_ids("default", "flaky") == []
    assert sent == [("default", "flaky", version)]
    embedded = runtime.embedder().embedded_total
    assert tasks.mirror("default", "flaky", version) == {"idle": False, "vectors": len(_gold_ids(runtime, "flaky"))}
    assert _status(runtime, "flaky") == DocumentStatus.indexed
    assert runtime.embedder().embedded_total == embedded  # the retry re-embedded nothing
    assert sorted(real.document_ids("default", "flaky")) == _gold_ids(runtime, "flaky")


def test_batch_chunk_embed_mirrors_and_sends_only_the_failed_mirror(
    runtime: Runtime, sent: list[tuple[str, str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = {d: _extracted(runtime, d) for d in ("b1", "b2")}
    done = tasks.chunk_embed_batch(versions, "default")
    assert done == versions
    assert all(_status(runtime, d) == DocumentStatus.indexed for d in versions)
    assert sent == []
    # A duplicate delivery of the batch finds every document past chunk_embed: nothing is embedded,
    # nothing mirrored again.
    embedded, table_version = runtime.embedder().embedded_total, _table_version(runtime)
    with pytest.raises(Ignore):
        tasks.chunk_embed_batch(versions, "default")
    assert runtime.embedder().embedded_total == embedded
    assert _table_version(runtime) == table_version
    # A batch embedded but whose mirror fails: each document gets a mirror task of its own.
    more = {d: _extracted(runtime, d) for d in ("b3", "b4")}
    _flaky(runtime, monkeypatch)
    assert tasks.chunk_embed_batch(more, "default") == {}
    assert all(_status(runtime, d) == DocumentStatus.embedding for d in more)
    assert sorted(sent) == [("default", "b3", more["b3"]), ("default", "b4", more["b4"])]


def test_a_redelivered_register_enqueues_a_version_still_queued(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between the register commit and its enqueue leaves the version ``queued``; the
    broker redelivers the register task, which must enqueue the processing (not call it a duplicate)."""
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    enqueued: list[tuple[str, str, int]] = []
    monkeypatch.setattr(dispatch, "enqueue_processing", lambda t, d, v: enqueued.append((t, d, v)))
    uri = runtime.objects.put("incoming/ferry.md", _TEXT.encode())
    # The first delivery committed 'queued' and died before its enqueue.
    first = register_one(runtime, _TEXT.encode(), filename="ferry.md", source="s3", stored_uri=uri)
    assert _status(runtime, first.doc_id) == DocumentStatus.queued
    again = tasks.register(uri, "ferry.md", "default", None, None)
    assert again is not None and again["duplicate"] and again["version"] == first.version
    assert enqueued == [("default", first.doc_id, first.version)]
    # Once the version has moved on, a repeat of the same object is a duplicate that enqueues nothing.
    assert step_one(runtime, "extract", "default", first.doc_id, first.version)
    enqueued.clear()
    assert tasks.register(uri, "ferry.md", "default", None, None) is not None
    assert enqueued == []


def test_a_scan_leaves_the_extract_queue_for_the_ocr_lane_and_text_documents_go_on(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    lane: list[tuple[str, int, dict[str, object]]] = []
    monkeypatch.setattr(dispatch, "enqueue_processing", lambda t, d, v, **kw: lane.append((d, v, kw)))
    scan = register_one(runtime, image_pdf([text_image(["Pelican harbour schedule"])]), filename="s.pdf", doc_id="s1")
    with pytest.raises(Ignore):  # this chain stops: the lane's chain sends its chunk_embed
        tasks.extract("default", "s1", scan.version)
    assert lane == [("s1", scan.version, {"ocr": True})]
    assert _status(runtime, "s1") == DocumentStatus.extracting  # nothing read, nothing written yet
    # The lane's task reads the pages, and the document goes on like any other.
    result = tasks.extract_ocr("default", "s1", scan.version)
    assert result is not None and result["page_count"] == 1 and not result["needs_ocr"]
    assert _status(runtime, "s1") == DocumentStatus.embedding
    assert tasks.chunk_embed("default", "s1", scan.version) is not None
    hits = search(runtime, SearchQuery(query="pelican harbour schedule", top_k=3, mode="keyword"))
    assert [h.doc_id for h in hits] == ["s1"] and hits[0].ocr

    # In a batch, text documents go on to chunk_embed; a scan leaves the batch for a lane chain of its own.
    lane.clear()
    other = register_one(runtime, image_pdf([text_image(["Heron census at dawn"])]), filename="s2.pdf", doc_id="s2")
    text = register_one(runtime, _TEXT.encode(), filename="t.md", doc_id="t1")
    assert tasks.extract_batch({"s2": other.version, "t1": text.version}, "default") == {"t1": text.version}
    assert lane == [("s2", other.version, {"ocr": True})]
    assert _status(runtime, "t1") == DocumentStatus.embedding and _status(runtime, "s2") == DocumentStatus.extracting


def test_without_the_ocr_lane_the_extract_task_reads_scans_itself(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_lane = Runtime.from_settings(runtime.settings.model_copy(update={"ocr_lane": False}))
    monkeypatch.setattr(tasks, "runtime", lambda: no_lane)
    scan = register_one(runtime, image_pdf([text_image(["Pelican harbour schedule"])]), filename="s.pdf", doc_id="s3")
    result = tasks.extract("default", "s3", scan.version)
    assert result is not None and result["page_count"] == 1
    assert _status(runtime, "s3") == DocumentStatus.embedding
