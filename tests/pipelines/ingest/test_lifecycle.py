"""Deleting a document: whoever asks (the API, an S3 ObjectRemoved), search, gold and silver let go of
it at once and stream consumers are told, through the same function."""

from __future__ import annotations

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.ingest.lifecycle import delete_document
from pipelines.lakehouse.schemas import UPDATES
from pipelines.runtime import Runtime
from tests.steps import process_one, register_one
from workers import tasks


def _delete_events(rt: Runtime, doc_id: str) -> list[tuple[str, int]]:
    rows = rt.lake.read(UPDATES, f"doc_id = '{doc_id}'", columns=["op", "version"]).to_pylist()
    return sorted((r["op"], r["version"]) for r in rows)


def test_delete_writes_one_delete_event_at_the_tombstone_version(runtime: Runtime) -> None:
    reg = register_one(runtime, b"# Note\n\nThe lighthouse keeper lights the lamp.", filename="n.md", doc_id="note")
    assert process_one(runtime, "default", "note", reg.version).state == "done"
    record = delete_document(runtime, "default", "note")
    assert record.status == DocumentStatus.deleted and record.version == reg.version + 1
    assert _delete_events(runtime, "note") == [("delete", record.version)]
    # Deleting again is a no-op: no second tombstone, no second event.
    assert delete_document(runtime, "default", "note").version == record.version
    assert _delete_events(runtime, "note") == [("delete", record.version)]


def test_an_s3_object_removed_tells_the_stream_too(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = register_one(runtime, b"# Ferry\n\nThe winter ferry leaves at seven.", filename="f.md", doc_id="s3doc")
    assert process_one(runtime, "default", "s3doc", reg.version).state == "done"
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    assert tasks.remove_object("default", "s3doc") == "deleted"
    assert runtime.vectors.document_ids("default", "s3doc") == []
    assert _delete_events(runtime, "s3doc") == [("delete", reg.version + 1)]
