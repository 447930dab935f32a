"""A vector store that fails mid-mirror (an injected fault around the real LanceDB store)."""

from __future__ import annotations

from pipelines.contracts.documents import DocumentStatus
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
