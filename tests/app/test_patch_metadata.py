"""PATCH /v1/documents/{id} and DELETE write change events to bronze.document_updates (no Spark here)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.client import DoclakeClient, DoclakeHTTPError
from pipelines.lakehouse.schemas import UPDATES


@pytest.fixture()
def client(inline_api: TestClient) -> TestClient:
    return inline_api


def _events(client: TestClient) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = client.app.state.runtime.lake.read(UPDATES).to_pylist()  # type: ignore[attr-defined]
    return sorted(rows, key=lambda r: int(str(r["version"])))


def test_patch_writes_merged_metadata_events_and_delete_writes_one(client: TestClient) -> None:
    files = {"file": ("memo.txt", b"Quarterly budget memo for the ops team.")}
    assert client.post("/v1/documents", files=files, data={"doc_id": "memo", "metadata": '{"team": "ops"}'}).is_success

    first = client.patch("/v1/documents/memo", json={"metadata": {"year": 2026}})
    assert first.status_code == 202, first.text
    assert first.json()["version"] == 2 and first.json()["metadata"] == {"team": "ops", "year": 2026}
    # A second patch before the stream applied the first builds on it: no key is lost.
    second = client.patch("/v1/documents/memo", json={"metadata": {"reviewed": True}}).json()
    assert second["version"] == 3 and second["metadata"] == {"team": "ops", "year": 2026, "reviewed": True}

    assert client.delete("/v1/documents/memo").json()["status"] == "deleted"
    events = _events(client)
    assert [e["op"] for e in events] == ["patch_metadata", "patch_metadata", "delete"]
    assert json.loads(str(events[1]["metadata_json"]))["reviewed"] is True
    assert client.patch("/v1/documents/memo", json={"metadata": {"a": 1}}).status_code == 404


def test_patch_rejects_unknown_documents_and_bad_metadata(client: TestClient) -> None:
    assert client.patch("/v1/documents/nope", json={"metadata": {"a": 1}}).status_code == 404
    client.post("/v1/documents", files={"file": ("a.txt", b"Some text here.")}, data={"doc_id": "a"})
    assert client.patch("/v1/documents/a", json={"metadata": {"a": [1]}}).status_code == 422
    assert client.patch("/v1/documents/a", json={"metadata": {"a=b": 1}}).status_code == 422
    assert client.patch("/v1/documents/a", json={}).status_code == 422


def test_the_client_patches_metadata(client: TestClient) -> None:
    api = DoclakeClient(http=client)
    accepted = api.upload(b"Quarterly budget memo for the ops team.", filename="memo.txt", doc_id="memo2")
    patched = api.patch_metadata("memo2", {"year": 2026})
    assert (patched.doc_id, patched.version, patched.metadata) == ("memo2", accepted.version + 1, {"year": 2026})
    with pytest.raises(DoclakeHTTPError) as info:
        api.patch_metadata("nope", {"a": 1})
    assert info.value.status == 404
