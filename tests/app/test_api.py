"""The HTTP edge in-process (TestClient): shapes, validation and problem details.

Processing is driven by calling the same pipeline steps the Celery tasks call, so these tests need
no broker; the real worker path is covered by tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.settings import Settings
from tests.steps import process_one


class _Inline:
    """Runs the processing chain synchronously in the API process (what the worker would do)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.client: TestClient | None = None

    def __call__(self, tenant: str, doc_id: str, version: int) -> None:
        self.calls.append((tenant, doc_id, version))
        assert self.client is not None
        rt = self.client.app.state.runtime  # type: ignore[attr-defined]
        process_one(rt, tenant, doc_id, version)


@pytest.fixture()
def inline() -> _Inline:
    return _Inline()


@pytest.fixture()
def client(settings: Settings, embedder: Embedder, inline: _Inline) -> Iterator[TestClient]:
    settings.max_upload_mb = 1
    with TestClient(create_app(settings, enqueue=inline)) as c:
        inline.client = c
        yield c


def _upload(client: TestClient, name: str, data: bytes, **form: str) -> dict[str, object]:
    response = client.post("/v1/documents", files={"file": (name, data)}, data=form)
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def test_upload_get_search_delete_roundtrip(client: TestClient, inline: _Inline) -> None:
    text = b"# Pager duty\n\nThe on-call engineer acknowledges every page within five minutes.\n"
    body = _upload(client, "oncall.md", text, doc_id="oncall", metadata=json.dumps({"team": "sre"}))
    assert body == {"doc_id": "oncall", "version": 1, "status": "queued", "duplicate": False}
    assert inline.calls == [("default", "oncall", 1)]

    doc = client.get("/v1/documents/oncall").json()
    assert doc["status"] == "indexed" and doc["chunks"] == 1 and doc["filename"] == "oncall.md"
    assert doc["metadata"] == {"team": "sre"} and doc["format"] == "md"

    hits = client.post("/v1/search", json={"query": "how fast must pages be acknowledged", "top_k": 3}).json()
    (hit,) = hits["results"]
    assert hit["doc_id"] == "oncall" and hit["version"] == 1 and hit["metadata"] == {"team": "sre"}
    assert {"chunk_id", "text", "score", "page_start", "page_end", "char_start", "char_end"} <= hit.keys()
    filtered = client.post("/v1/search", json={"query": "pages", "filter": {"team": "other"}}).json()
    assert filtered["results"] == []

    listed = client.get("/v1/documents", params={"status": "indexed"}).json()
    assert listed["total"] == 1 and listed["documents"][0]["doc_id"] == "oncall"

    again = _upload(client, "oncall.md", text, doc_id="oncall")
    assert again["duplicate"] is True and len(inline.calls) == 1  # nothing queued twice

    deleted = client.delete("/v1/documents/oncall").json()
    assert deleted["status"] == "deleted"
    assert client.post("/v1/search", json={"query": "acknowledges every page"}).json()["results"] == []
    assert client.get("/v1/documents", params={"status": "deleted"}).json()["total"] == 1


def test_scans_and_photos_are_searchable_and_say_how_they_were_read(client: TestClient) -> None:
    from tests.scans import image_pdf, png_bomb, text_image, to_bytes

    scan = image_pdf([text_image(["Incident review: the cooling pump seized at 03:10."])])
    photo = to_bytes([text_image(["Whiteboard: migrate the billing database on Friday."])], "PNG")
    _upload(client, "scan.pdf", scan, doc_id="scan")
    _upload(client, "IMG_0042.png", photo, doc_id="photo")
    doc = client.get("/v1/documents/scan").json()
    assert doc["status"] == "indexed" and doc["format"] == "pdf" and doc["page_count"] == 1
    (page,) = doc["pages"]
    assert page["source"] == "ocr" and page["chars"] > 20 and 0.5 < page["ocr_confidence"] <= 1
    photo_doc = client.get("/v1/documents/photo").json()
    assert photo_doc["status"] == "indexed" and photo_doc["format"] == "image" and photo_doc["mime"] == "image/png"

    hits = client.post("/v1/search", json={"query": "cooling pump seized", "mode": "keyword", "top_k": 1}).json()
    assert [(h["doc_id"], h["ocr"]) for h in hits["results"]] == [("scan", True)]
    hits = client.post("/v1/search", json={"query": "billing database migration", "top_k": 1}).json()
    assert [(h["doc_id"], h["ocr"]) for h in hits["results"]] == [("photo", True)]
    _upload(client, "notes.md", b"# Notes\n\nThe cooling pump was replaced in May.", doc_id="born-digital")
    hits = client.post("/v1/search", json={"query": "cooling pump", "mode": "keyword", "top_k": 5}).json()
    assert {h["doc_id"]: h["ocr"] for h in hits["results"]} == {"scan": True, "born-digital": False}

    _upload(client, "bomb.png", png_bomb(), doc_id="bomb")
    bomb = client.get("/v1/documents/bomb").json()
    assert bomb["status"] == "failed" and "pixels" in bomb["error"] and "decompression bomb" in bomb["error"]


def test_failed_extraction_is_visible_with_a_reason(client: TestClient) -> None:
    body = _upload(client, "report.pdf", b"%PDF-1.7\n this is not really a pdf")
    doc = client.get(f"/v1/documents/{body['doc_id']}").json()
    assert doc["status"] == "failed" and doc["error"]
    failed = client.get("/v1/documents", params={"status": "failed"}).json()
    assert [d["doc_id"] for d in failed["documents"]] == [body["doc_id"]]


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        ({"metadata": "{not json"}, "metadata is not valid JSON"),
        ({"metadata": "[1, 2]"}, "metadata must be a JSON object"),
        ({"doc_id": "../escape"}, "doc_id must be"),
    ],
)
def test_bad_uploads_get_problem_details(client: TestClient, form: dict[str, str], detail: str) -> None:
    response = client.post("/v1/documents", files={"file": ("a.txt", b"hello there")}, data=form)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_missing_file_and_oversize_upload(client: TestClient) -> None:
    response = client.post("/v1/documents", data={"doc_id": "x"})
    assert response.status_code == 422 and response.json()["title"] == "Invalid request"
    big = client.post("/v1/documents", files={"file": ("big.txt", b"a" * (1024 * 1024 + 1))})
    assert big.status_code == 413


def test_unknown_document_and_bad_queries(client: TestClient) -> None:
    missing = client.get("/v1/documents/nope")
    assert missing.status_code == 404 and missing.json()["doc_id"] == "nope"
    assert client.delete("/v1/documents/nope").status_code == 404
    assert client.post("/v1/search", json={"query": ""}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "top_k": 0}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "filter": {"a": [1]}}).status_code == 422
    assert client.get("/v1/documents", params={"status": "bogus"}).status_code == 422


def test_health_and_openapi(client: TestClient) -> None:
    import time

    deadline = time.monotonic() + 60
    while client.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    spec = client.get("/openapi.json").json()
    assert {"/v1/documents", "/v1/documents/{doc_id}", "/v1/search", "/healthz"} <= spec["paths"].keys()


def test_search_modes(client: TestClient) -> None:
    _upload(client, "oncall.md", b"# Pager duty\n\nThe on-call engineer acknowledges every page within five minutes.\n")
    _upload(client, "coffee.md", b"# Coffee\n\nThe espresso machine on floor three is descaled on Fridays.\n")
    query = "when is the espresso machine descaled"
    for mode in ("dense", "keyword", "hybrid"):
        response = client.post("/v1/search", json={"query": query, "top_k": 2, "mode": mode})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert results[0]["filename"] == "coffee.md", mode
        assert results[0]["text"].startswith("# Coffee") or "espresso" in results[0]["text"]
    keyword = client.post("/v1/search", json={"query": "espresso", "mode": "keyword"}).json()["results"]
    assert [r["filename"] for r in keyword] == ["coffee.md"]  # BM25: no shared term, no hit
    assert client.post("/v1/search", json={"query": "x", "mode": "sparse"}).status_code == 422


def test_keyword_search_on_a_dense_only_store_is_a_422(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.errors import SearchModeUnsupported
    from pipelines.vectorstore.pinecone import PineconeVectorStore

    store = client.app.state.runtime.vectors  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "keyword_query", PineconeVectorStore.keyword_query.__get__(store))
    monkeypatch.setattr(store, "keyword_search", PineconeVectorStore.keyword_search)
    for mode in ("keyword", "hybrid"):
        response = client.post("/v1/search", json={"query": "pages", "mode": mode})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == SearchModeUnsupported.code
    default = client.post("/v1/search", json={"query": "pages"})  # no mode: the store's default, dense here
    assert default.status_code == 200 and default.json()["mode"] == "dense"
