"""POST /v1/documents/batch in-process: per-file outcomes, groups handed to the workers, bad requests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.client import DoclakeClient
from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.ingest.runner import process_inline
from pipelines.settings import Settings


class _Batches:
    """Records each group the API hands over and processes it with the batch steps the workers run."""

    def __init__(self) -> None:
        self.groups: list[dict[str, int]] = []
        self.client: TestClient | None = None

    def __call__(self, tenant: str, versions: dict[str, int]) -> None:
        self.groups.append(dict(versions))
        assert self.client is not None
        process_inline(self.client.app.state.runtime, tenant, versions)  # type: ignore[attr-defined]


@pytest.fixture()
def batches() -> _Batches:
    return _Batches()


@pytest.fixture()
def client(settings: Settings, embedder: Embedder, batches: _Batches) -> Iterator[TestClient]:
    settings.max_batch_files = 6
    settings.ingest_batch_size = 2

    def one_by_one(*_: object) -> None:
        pytest.fail("a batch upload must not enqueue its versions one by one")

    with TestClient(create_app(settings, enqueue=one_by_one, enqueue_batch=batches)) as c:
        batches.client = c
        yield c


NOTES = {
    "disk": b"Disk alerts fire when a volume passes 85 percent; expand it before it reaches 95.",
    "certs": b"TLS certificates are renewed thirty days before expiry by the cert-manager job.",
    "dns": b"DNS changes go through the infra repository and are applied by the nightly pipeline.",
}


def test_batch_upload_reports_each_file_and_processes_groups(client: TestClient, batches: _Batches) -> None:
    files = [("files", (f"{name}.txt", data)) for name, data in NOTES.items()]
    files.append(("files", ("bad.txt", b"this one has a bad doc id")))
    files.append(("files", ("disk-again.txt", NOTES["disk"])))  # same bytes as the first file: a duplicate
    doc_ids = json.dumps(["disk", "certs", None, "../nope", "disk"])
    response = client.post(
        "/v1/documents/batch", files=files, data={"doc_ids": doc_ids, "metadata": json.dumps({"team": "sre"})}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 1, 1)
    items = body["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
    assert items[3]["error"].startswith("invalid_input") and items[3]["doc_id"] == "../nope"
    assert items[4]["duplicate"] is True and items[4]["doc_id"] == "disk"
    dns_id = items[2]["doc_id"]
    assert dns_id.startswith("d") and items[2]["status"] == "queued"

    # Three new versions in groups of DOCLAKE_INGEST_BATCH_SIZE (2).
    assert [len(g) for g in batches.groups] == [2, 1]
    assert {d for g in batches.groups for d in g} == {"disk", "certs", dns_id}
    for doc_id in ("disk", "certs", dns_id):
        doc = client.get(f"/v1/documents/{doc_id}").json()
        assert doc["status"] == "indexed" and doc["chunks"] == 1 and doc["metadata"] == {"team": "sre"}
    hits = client.post("/v1/search", json={"query": "when are TLS certificates renewed", "top_k": 1}).json()
    assert hits["results"][0]["doc_id"] == "certs"
    assert client.get("/v1/documents/bad").status_code == 404


def test_the_client_uploads_many(client: TestClient) -> None:
    api = DoclakeClient(http=client)
    accepted = api.upload_many([("a.txt", NOTES["disk"]), NOTES["dns"]], doc_ids=["a", None])
    assert accepted.accepted == 2 and accepted.items[0].doc_id == "a"
    assert accepted.items[0].filename == "a.txt" and accepted.items[1].filename == "upload"
    assert api.get("a").status == "indexed"


@pytest.mark.parametrize(
    ("form", "count", "message"),
    [
        ({"doc_ids": "[1, 2"}, 2, "doc_ids is not valid JSON"),
        ({"doc_ids": json.dumps(["only-one"])}, 2, "doc_ids must be a JSON array of 2"),
        ({"doc_ids": json.dumps({"a": 1})}, 2, "doc_ids must be a JSON array"),
        ({"metadata": json.dumps(["x"])}, 2, "metadata must be a JSON object"),
        ({"metadata": json.dumps({"nested": {"a": 1}})}, 1, "metadata value of 'nested'"),
        ({}, 7, "at most 6 files"),
    ],
)
def test_bad_batches_are_refused_whole(
    client: TestClient, batches: _Batches, form: dict[str, str], count: int, message: str
) -> None:
    files = [("files", (f"n{i}.txt", f"note number {i}".encode())) for i in range(count)]
    response = client.post("/v1/documents/batch", files=files, data=form)
    if "nested" in form.get("metadata", ""):
        # Metadata is checked per file: the one file is rejected in its item, the request succeeds.
        assert response.status_code == 202 and response.json()["rejected"] == 1
        assert message in response.json()["items"][0]["error"]
    else:
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
    assert batches.groups == []
    assert client.get("/v1/documents").json()["total"] == 0


def test_without_a_batch_sender_each_version_is_enqueued_alone(settings: Settings, embedder: Embedder) -> None:
    sent: list[tuple[str, str, int]] = []
    with TestClient(create_app(settings, enqueue=lambda *a: sent.append(a))) as c:
        files = [("files", ("a.txt", b"alpha note")), ("files", ("b.txt", b"beta note"))]
        body = c.post("/v1/documents/batch", files=files, data={"doc_ids": json.dumps(["a", "b"])}).json()
    assert body["accepted"] == 2
    assert sorted(sent) == [("default", "a", 1), ("default", "b", 1)]


def test_groups_hold_at_most_batch_size_documents_and_big_files_go_alone() -> None:
    from types import SimpleNamespace

    from app.routes import documents

    sent: list[dict[str, int]] = []
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(enqueue_batch=lambda t, g: sent.append(g))))
    big = documents._GROUP_BYTES + 1
    queued = {"a": (1, 10), "b": (1, 10), "c": (1, 10), "huge": (2, big), "d": (1, 10)}
    documents._enqueue_groups(request, "t", queued, 2)  # type: ignore[arg-type]
    assert sent == [{"a": 1, "b": 1}, {"c": 1}, {"huge": 2}, {"d": 1}]
