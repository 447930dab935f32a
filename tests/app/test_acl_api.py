"""Per-document access control through the HTTP API: upload, batch, PATCH, validation, search, rag, as_of."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, UPDATES
from pipelines.runtime import Runtime
from tests.steps import apply_updates

RUNBOOK = b"The on-call runbook: restart the payment gateway when the queue depth alarm fires."
PAYROLL = b"Payroll schedule: salaries are paid on the twenty-fifth of every month."
CANTEEN = b"The canteen menu changes every Monday; soup is served from noon."
MODES = ("dense", "keyword", "hybrid")


@pytest.fixture()
def client(inline_api: TestClient) -> TestClient:
    return inline_api


def _rt(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


def _upload(client: TestClient, doc_id: str, data: bytes, **form: str) -> dict[str, Any]:
    response = client.post("/v1/documents", files={"file": (f"{doc_id}.txt", data)}, data={"doc_id": doc_id, **form})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _docs(client: TestClient, query: str, principals: list[str] | None = None, **extra: Any) -> set[str]:
    body: dict[str, Any] = {"query": query, "top_k": 10, **extra}
    if principals is not None:
        body["principals"] = principals
    response = client.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    return {h["doc_id"] for h in response.json()["results"]}


def _corpus(client: TestClient) -> None:
    _upload(client, "runbook", RUNBOOK, acl='["group:sre"]')
    _upload(client, "payroll", PAYROLL, acl='["user:ana", "group:hr"]')
    _upload(client, "canteen", CANTEEN)


def test_upload_stores_the_acl_on_silver_gold_and_the_document_view(client: TestClient) -> None:
    _corpus(client)
    assert client.get("/v1/documents/runbook").json()["acl"] == ["group:sre"]
    assert client.get("/v1/documents/payroll").json()["acl"] == ["group:hr", "user:ana"]  # normalised: sorted
    assert client.get("/v1/documents/canteen").json()["acl"] is None
    rt = _rt(client)
    gold = rt.lake.read(CHUNKS, columns=["doc_id", "acl"]).to_pylist()
    assert {(g["doc_id"], tuple(g["acl"] or ())) for g in gold} == {
        ("runbook", ("group:sre",)),
        ("payroll", ("group:hr", "user:ana")),
        ("canteen", ()),
    }


@pytest.mark.parametrize("mode", MODES)
def test_search_returns_a_document_only_to_its_readers(client: TestClient, mode: str) -> None:
    _corpus(client)
    everything = "payment gateway queue alarm salaries paid month canteen soup noon"
    assert _docs(client, everything, mode=mode) == {"canteen"}  # deny by default
    assert _docs(client, everything, ["group:sre"], mode=mode) == {"canteen", "runbook"}
    assert _docs(client, everything, ["user:ana"], mode=mode) == {"canteen", "payroll"}
    assert _docs(client, everything, ["group:hr", "group:sre"], mode=mode) == {"canteen", "payroll", "runbook"}
    assert _docs(client, everything, ["user:bob"], mode=mode) == {"canteen"}


def test_top_k_is_filled_with_readable_chunks(client: TestClient) -> None:
    """The acl is a prefilter inside the k-NN: unreadable near neighbours do not crowd out readable ones."""
    for i in range(6):
        _upload(
            client,
            f"secret{i}",
            f"Gateway restart procedure number {i} for the payment queue.".encode(),
            acl='["group:x"]',
        )
    _upload(client, "far", b"A recipe for lentil soup with cumin and lemon.")
    _upload(client, "farther", b"Sailing knots: bowline, clove hitch and reef knot.")
    hits = client.post("/v1/search", json={"query": "payment gateway restart", "top_k": 2}).json()["results"]
    assert sorted(h["doc_id"] for h in hits) == ["far", "farther"]


def test_rag_context_packs_only_readable_documents(client: TestClient) -> None:
    _corpus(client)
    question = {"question": "when are salaries paid and how is the gateway restarted?", "max_tokens": 400}
    anonymous = client.post("/v1/rag/context", json=question).json()
    assert {c["doc_id"] for c in anonymous["citations"]} <= {"canteen"}
    assert "salaries" not in anonymous["context"] and "gateway" not in anonymous["context"]
    hr = client.post("/v1/rag/context", json={**question, "principals": ["group:hr"]}).json()
    assert "payroll" in {c["doc_id"] for c in hr["citations"]} and "gateway" not in hr["context"]


def test_patch_changes_the_acl_without_re_embedding(client: TestClient) -> None:
    _upload(client, "runbook", RUNBOOK, metadata='{"team": "ops"}')
    rt = _rt(client)
    embedded = rt.embedder().embedded_total
    patched = client.patch("/v1/documents/runbook", json={"acl": ["group:sre"]})
    assert patched.status_code == 202, patched.text
    assert patched.json()["acl"] == ["group:sre"] and patched.json()["metadata"] == {"team": "ops"}
    assert _docs(client, "payment gateway") == {"runbook"}  # the stream has not applied it yet
    apply_updates(rt)
    doc = client.get("/v1/documents/runbook").json()
    assert (doc["version"], doc["acl"], doc["chunks_embedded"], doc["status"]) == (2, ["group:sre"], 0, "indexed")
    assert rt.embedder().embedded_total == embedded
    assert _docs(client, "payment gateway") == set()
    assert _docs(client, "payment gateway", ["group:sre"]) == {"runbook"}
    # Metadata alone keeps the acl; acl and metadata together set both; null clears the acl.
    client.patch("/v1/documents/runbook", json={"metadata": {"year": 2026}})
    apply_updates(rt)
    assert client.get("/v1/documents/runbook").json()["acl"] == ["group:sre"]
    client.patch("/v1/documents/runbook", json={"metadata": {"tier": 1}, "acl": ["user:ana"]})
    apply_updates(rt)
    doc = client.get("/v1/documents/runbook").json()
    assert doc["acl"] == ["user:ana"] and doc["metadata"] == {"team": "ops", "year": 2026, "tier": 1}
    assert _docs(client, "payment gateway", ["group:sre"]) == set()
    assert client.patch("/v1/documents/runbook", json={"acl": None}).json()["acl"] is None
    apply_updates(rt)
    assert client.get("/v1/documents/runbook").json()["acl"] is None
    assert _docs(client, "payment gateway") == {"runbook"}
    assert rt.embedder().embedded_total == embedded  # nothing was ever re-embedded


def test_queued_patches_build_on_each_other(client: TestClient) -> None:
    """A second PATCH before the stream applied the first carries the first one's acl (nothing is lost when a
    micro-batch keeps only the newest event)."""
    _upload(client, "runbook", RUNBOOK)
    client.patch("/v1/documents/runbook", json={"acl": ["group:sre"]})
    second = client.patch("/v1/documents/runbook", json={"metadata": {"team": "ops"}}).json()
    assert second["acl"] == ["group:sre"]
    events = sorted(_rt(client).lake.read(UPDATES).to_pylist(), key=lambda e: e["version"])
    assert [json.loads(e["acl_json"]) for e in events] == [["group:sre"], ["group:sre"]]
    apply_updates(_rt(client))
    assert client.get("/v1/documents/runbook").json()["acl"] == ["group:sre"]


def test_a_new_version_without_an_acl_keeps_the_current_one(client: TestClient) -> None:
    _upload(client, "runbook", RUNBOOK, acl='["group:sre"]')
    v2 = _upload(client, "runbook", RUNBOOK + b" Escalate to the duty manager after ten minutes.")
    doc = client.get("/v1/documents/runbook").json()
    assert (doc["version"], doc["acl"]) == (v2["version"], ["group:sre"])
    assert _docs(client, "duty manager escalation") == set()
    # Same bytes with another acl are a new version (not a duplicate); an explicit null makes it public.
    v3 = _upload(client, "runbook", RUNBOOK + b" Escalate to the duty manager after ten minutes.", acl='["group:ops"]')
    assert not v3["duplicate"] and client.get("/v1/documents/runbook").json()["acl"] == ["group:ops"]
    _upload(client, "runbook", RUNBOOK, acl="null")
    assert client.get("/v1/documents/runbook").json()["acl"] is None
    assert _docs(client, "payment gateway restart") == {"runbook"}


@pytest.mark.parametrize(
    ("acl", "reason"),
    [
        ("[]", "at least one principal"),
        ("group:sre", "not valid JSON"),
        ('"group:sre"', "JSON array"),
        ("[1, 2]", "must be strings"),
        ('[""]', "non-empty"),
        ('["*"]', "reserved"),
        ('[" group:sre"]', "spaces"),
        (json.dumps(["x" * 300]), "at most 256 characters"),
        (json.dumps([f"user:{i}" for i in range(101)]), "at most 100 principals"),
    ],
)
def test_bad_acls_are_refused_with_nothing_written(client: TestClient, acl: str, reason: str) -> None:
    response = client.post("/v1/documents", files={"file": ("a.txt", RUNBOOK)}, data={"doc_id": "a", "acl": acl})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"] and response.json()["code"] == "invalid_acl"
    batch = client.post("/v1/documents/batch", files=[("files", ("a.txt", RUNBOOK))], data={"acl": acl})
    assert batch.status_code == 422 and reason in batch.json()["detail"]
    assert _rt(client).lake.read(DOCUMENTS).num_rows == 0


def test_bad_acls_in_a_patch_are_refused(client: TestClient) -> None:
    _upload(client, "runbook", RUNBOOK, acl='["group:sre"]')
    for body in ({"acl": []}, {"acl": ["*"]}, {"acl": "group:sre"}, {"acl": [7]}, {"acl": ["a" * 257]}):
        response = client.patch("/v1/documents/runbook", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    assert _rt(client).lake.read(UPDATES).num_rows == 0
    assert client.get("/v1/documents/runbook").json()["acl"] == ["group:sre"]


def test_batch_upload_takes_one_acl_for_all_or_one_per_file(client: TestClient) -> None:
    files = [("files", ("a.txt", RUNBOOK)), ("files", ("b.txt", PAYROLL)), ("files", ("c.txt", CANTEEN))]
    form = {
        "doc_ids": '["a", "b", "c"]',
        "acl": '["group:staff"]',
        "acls": '[["group:sre"], null, ["user:ana", "group:hr"]]',
    }
    response = client.post("/v1/documents/batch", files=files, data=form)
    assert response.status_code == 202 and response.json()["accepted"] == 3, response.text
    acls = {d: client.get(f"/v1/documents/{d}").json()["acl"] for d in "abc"}
    assert acls == {"a": ["group:sre"], "b": ["group:staff"], "c": ["group:hr", "user:ana"]}
    assert _docs(client, "salaries paid gateway canteen", ["group:staff"]) == {"b"}
    wrong_length = client.post("/v1/documents/batch", files=files, data={"acls": "[null]"})
    assert wrong_length.status_code == 422 and "one per file" in wrong_length.json()["detail"]
    bad_entry = client.post("/v1/documents/batch", files=files, data={"acls": '[null, ["*"], null]'})
    assert bad_entry.status_code == 422 and "reserved" in bad_entry.json()["detail"]


def test_search_refuses_malformed_principals(client: TestClient) -> None:
    for principals in (["*"], [""], [3], "group:sre", ["x" * 300]):
        response = client.post("/v1/search", json={"query": "anything", "principals": principals})
        assert response.status_code == 422, principals
    assert client.post("/v1/search", json={"query": "anything", "principals": []}).status_code == 200


def test_as_of_replays_the_acl_of_that_gold_version(client: TestClient) -> None:
    _upload(client, "runbook", RUNBOOK)
    rt = _rt(client)
    public_version = rt.lake.snapshot(CHUNKS).version()
    client.patch("/v1/documents/runbook", json={"acl": ["group:sre"]})
    apply_updates(rt)
    restricted_version = rt.lake.snapshot(CHUNKS).version()
    assert restricted_version > public_version
    query = "payment gateway restart"
    assert _docs(client, query, as_of=public_version) == {"runbook"}  # then, the tenant could read it
    assert _docs(client, query, as_of=restricted_version) == set()
    assert _docs(client, query, ["group:sre"], as_of=restricted_version) == {"runbook"}
    assert _docs(client, query) == set() and _docs(client, query, ["group:sre"]) == {"runbook"}
