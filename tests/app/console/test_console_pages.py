"""The console in-process: who may open which page, and that pages show what the JSON API knows."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pipelines.embed.model import Embedder
from pipelines.settings import Settings
from tests.keys import ADMIN_KEY, ALPHA, BRAVO, keyed_api


@pytest.fixture()
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with keyed_api(settings) as c:
        yield c


def _login(client: TestClient, key: str) -> None:
    answer = client.post("/console/login", data={"key": key}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_pages_need_a_key_and_the_right_one(client: TestClient) -> None:
    answer = client.get("/console/documents", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert client.post("/console/login", data={"key": "not-a-key-0123456789"}).status_code == 401
    # An htmx poll without a session asks the browser for a full load of the login page.
    polled = client.get("/console/documents?partial=1", headers={"HX-Request": "true"})
    assert polled.status_code == 401 and polled.headers["HX-Redirect"] == "/console/login"

    _login(client, ALPHA)
    assert client.get("/console/documents").status_code == 200
    refused = client.get("/console/operations")
    assert refused.status_code == 403  # a tenant key is no operator key
    # A page a browser shows, saying why and offering another key, not the API's problem+json.
    assert refused.headers["content-type"].startswith("text/html")
    assert "operator pages need the admin key" in refused.text and 'action="/console/logout"' in refused.text
    set_cookie = client.post("/console/login", data={"key": ALPHA}, follow_redirects=False).headers["set-cookie"]
    assert "httponly" in set_cookie.lower() and "samesite=strict" in set_cookie.lower()

    client.cookies.clear()
    _login(client, ADMIN_KEY)
    assert client.get("/console/operations").status_code == 200
    refused = client.get("/console/documents")
    assert refused.status_code == 403  # the admin key reads no tenant's documents
    assert "log in with a tenant key" in refused.text
    polled = client.get("/console/documents?partial=1", headers={"HX-Request": "true"})
    assert polled.status_code == 403 and polled.text.startswith("the admin key cannot read")


def test_a_cross_origin_post_is_refused(client: TestClient) -> None:
    _login(client, ALPHA)
    answer = client.post(
        "/console/documents/upload",
        files={"files": ("a.txt", b"hello", "text/plain")},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


def test_upload_list_detail_and_search(client: TestClient) -> None:
    _login(client, ALPHA)
    uploaded = client.post(
        "/console/documents/upload",
        files=[
            (
                "files",
                ("otters.txt", b"Sea otters hold hands while they sleep so they do not drift apart.", "text/plain"),
            ),
            ("files", ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf")),
        ],
    )
    assert uploaded.status_code == 200 and "otters.txt" in uploaded.text and "broken.pdf" in uploaded.text

    listing = client.get("/console/documents").text
    assert "indexed 1" in listing and "failed 1" in listing and "otters.txt" in listing
    failed = client.get("/console/documents?status=failed").text
    assert "broken.pdf" in failed and "otters.txt" not in failed

    docs = client.get("/v1/documents?status=failed", headers={"Authorization": f"Bearer {ALPHA}"}).json()
    broken = docs["documents"][0]
    detail = client.get(f"/console/documents/{broken['doc_id']}").text
    assert 'id="reason"' in detail and broken["error"].split(":")[0] in detail

    hits = client.post("/console/search", data={"query": "otters sleeping", "mode": "hybrid"}).text
    assert "otters.txt" in hits and "text layer" in hits
    rag = client.post("/console/search", data={"query": "otters sleeping", "rag": "true"}).text
    assert "[1]" in rag and "otters.txt" in rag
    # Principals pass through to search: a document without an acl is found with or without them.
    assert 'name="principals"' in client.get("/console/search").text
    seen_by_ana = client.post("/console/search", data={"query": "otters sleeping", "principals": "user:ana"}).text
    assert "otters.txt" in seen_by_ana
    bad = client.post("/console/search", data={"query": "x", "filter": "{nope"}).text
    assert "filter is not valid JSON" in bad

    # Another tenant sees none of it.
    client.cookies.clear()
    _login(client, BRAVO)
    assert "otters.txt" not in client.get("/console/documents").text


def test_static_assets_ship(client: TestClient) -> None:
    js = client.get("/console/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text
    assert client.get("/console/static/console.css").status_code == 200


def test_an_upload_and_a_settled_document_refresh_the_list(client: TestClient) -> None:
    _login(client, ALPHA)
    uploaded = client.post("/console/documents/upload", files={"files": ("n.txt", b"a note on kilns", "text/plain")})
    assert uploaded.headers["HX-Trigger"] == "documents-changed"
    doc_id = client.get("/v1/documents", headers={"Authorization": f"Bearer {ALPHA}"}).json()["documents"][0]["doc_id"]
    settled = client.get(f"/console/documents/{doc_id}/status")  # processed inline: already indexed
    assert settled.headers["HX-Trigger"] == "documents-changed" and "hx-get" not in settled.text
    page = client.get("/console/documents").text
    assert 'hx-trigger="documents-changed from:body"' in page  # nothing moving: no timed polling
    refresh = re.search(r'hx-get="(/console/documents\?partial=1[^"]*)"', page)
    assert refresh is not None
    table = client.get(html.unescape(refresh.group(1)))  # the URL htmx will fetch
    assert table.status_code == 200 and "n.txt" in table.text
