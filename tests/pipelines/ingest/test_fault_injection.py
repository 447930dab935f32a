"""A vector store that fails mid-mirror (an injected fault around the real LanceDB store)."""

from __future__ import annotations

from pipelines.contracts.documents import DocumentStatus
from pipelines.ingest.runner import run_embed_and_mirror
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.documents import get_document
from pipelines.runtime import Runtime
from tests.doubles.failing_store import FailingStore
from tests.steps import process_one, register_one, run_one


def _flaky(rt: Runtime, *, on: str) -> Runtime:
    """Another process on the same lake whose vector store fails once on ``on`` (around the real store)."""
    return Runtime.from_settings(
        rt.settings, vector_store=lambda index: FailingStore(rt.vectors_for(index), failures=1, on=on)
    )


def _gold_ids(rt: Runtime, doc_id: str) -> list[str]:
    return sorted(doc_chunks(rt.lake, "default", doc_id, columns=["chunk_id"]).column("chunk_id").to_pylist())


def _manual(edit: str) -> bytes:
    return "\n".join(f"## Part {i}\n\nPart {i} text {edit if i == 2 else 'same'}." for i in range(5)).encode()


def test_failed_upsert_is_retried_and_leaves_no_drift(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual("one"), filename="m.md", doc_id="flaky")
    for step in ("extract", "chunk_embed"):
        assert run_one(runtime, step, "default", "flaky", reg.version, can_retry=True).state == "done"
    real = runtime.vectors
    outcome = run_one(_flaky(runtime, on="upsert"), "mirror", "default", "flaky", reg.version, can_retry=True)
    assert outcome.state == "retry" and "injected upsert failure" in (outcome.error or "")
    row = get_document(runtime.lake, "default", "flaky")
    assert row is not None and row["status"] == DocumentStatus.embedding  # not indexed, not lost
    assert run_one(runtime, "mirror", "default", "flaky", reg.version, can_retry=True).state == "done"
    assert sorted(real.document_ids("default", "flaky")) == _gold_ids(runtime, "flaky")


def test_failure_between_upsert_and_stale_delete_heals_on_retry(runtime: Runtime) -> None:
    register_one(runtime, _manual("one"), filename="m.md", doc_id="half")
    assert process_one(runtime, "default", "half", 1).state == "done"
    register_one(runtime, _manual("two"), filename="m.md", doc_id="half")
    for step in ("extract", "chunk_embed"):
        assert run_one(runtime, step, "default", "half", 2, can_retry=True).state == "done"
    real = runtime.vectors
    assert run_one(_flaky(runtime, on="delete"), "mirror", "default", "half", 2, can_retry=True).state == "retry"
    assert len(real.document_ids("default", "half")) == 6  # new chunk in, stale one not yet out: the drift
    assert run_one(runtime, "mirror", "default", "half", 2, can_retry=True).state == "done"
    assert sorted(real.document_ids("default", "half")) == _gold_ids(runtime, "half")


def test_retries_spent_mark_failed_and_a_reupload_retries(runtime: Runtime) -> None:
    reg = register_one(runtime, _manual("one"), filename="m.md", doc_id="down")
    for step in ("extract", "chunk_embed"):
        run_one(runtime, step, "default", "down", reg.version, can_retry=True)
    real = runtime.vectors
    outcome = run_one(_flaky(runtime, on="upsert"), "mirror", "default", "down", reg.version, can_retry=False)
    assert outcome.state == "failed"
    row = get_document(runtime.lake, "default", "down")
    assert row is not None and row["status"] == "failed" and "injected upsert failure" in row["error"]
    again = register_one(runtime, _manual("one"), filename="m.md", doc_id="down")
    assert not again.duplicate and again.version == 2
    assert process_one(runtime, "default", "down", 2).state == "done"
    assert sorted(real.document_ids("default", "down")) == _gold_ids(runtime, "down")


def test_a_mirror_fused_with_chunk_embed_fails_or_retries_alone(runtime: Runtime) -> None:
    """chunk_embed and mirror in one lock hold and one silver commit: a failed mirror leaves the embedding
    recorded and the document in the status the mirror's own policy gives it, never ``indexed``."""
    for doc_id in ("fused-retry", "fused-fail"):
        reg = register_one(runtime, _manual(doc_id), filename="m.md", doc_id=doc_id)
        assert run_one(runtime, "extract", "default", doc_id, reg.version, can_retry=True).state == "done"
    real = runtime.vectors
    embedded, mirrored = run_embed_and_mirror(
        _flaky(runtime, on="upsert"), "default", {"fused-retry": 1}, can_retry=True, can_retry_mirror=True
    )
    assert embedded["fused-retry"].state == "done" and mirrored["fused-retry"].state == "retry"
    row = get_document(runtime.lake, "default", "fused-retry")
    assert row is not None and row["status"] == DocumentStatus.embedding
    assert row["chunks"] == len(_gold_ids(runtime, "fused-retry")) > 0
    assert real.document_ids("default", "fused-retry") == []
    assert run_one(runtime, "mirror", "default", "fused-retry", 1, can_retry=True).state == "done"
    assert sorted(real.document_ids("default", "fused-retry")) == _gold_ids(runtime, "fused-retry")

    embedded, mirrored = run_embed_and_mirror(
        _flaky(runtime, on="upsert"), "default", {"fused-fail": 1}, can_retry=True, can_retry_mirror=False
    )
    assert embedded["fused-fail"].state == "done" and mirrored["fused-fail"].state == "failed"
    row = get_document(runtime.lake, "default", "fused-fail")
    assert row is not None and row["status"] == DocumentStatus.failed
    assert row["chunks"] == len(_gold_ids(runtime, "fused-fail")) > 0
    assert "injected upsert failure" in row["error"]
    # A redelivery finds chunk_embed's work done and runs no mirror over the failure.
    embedded, mirrored = run_embed_and_mirror(
        runtime, "default", {"fused-fail": 1}, can_retry=True, can_retry_mirror=True
    )
    result = embedded["fused-fail"].result
    assert embedded["fused-fail"].state == "done" and result is not None and result.idle and mirrored == {}
