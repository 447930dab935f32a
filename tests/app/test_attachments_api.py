"""E-mail attachments through the HTTP API: parent links on GET, ?parent= listing, search, delete cascade, bombs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.attachments import GIF, message


def test_email_attachments_through_the_api(inline_api: TestClient) -> None:
    note = message("Release notes", "The release train leaves on Thursday.", files=[("train.txt", b"x")])
    mail = message(
        "Handover",
        "Handover for the night shift.",
        files=[("runbook.txt", b"The marmalade pump is restarted with the blue lever."), ("badge.gif", GIF)],
        messages=[note],
    )
    response = inline_api.post("/v1/documents", files={"file": ("handover.eml", mail.as_bytes())})
    assert response.status_code == 202, response.text
    parent = response.json()["doc_id"]

    doc = inline_api.get(f"/v1/documents/{parent}").json()
    assert doc["status"] == "indexed" and doc["parent_doc_id"] is None and doc["attachment_errors"] == []
    listed = inline_api.get("/v1/documents", params={"parent": parent}).json()
    assert listed["total"] == 3
    children = {d["filename"]: d for d in listed["documents"]}
    assert set(children) == {"runbook.txt", "badge.gif", "Release notes.eml"}
    assert {d["parent_doc_id"] for d in children.values()} == {parent}
    assert children["runbook.txt"]["status"] == "indexed" and children["Release notes.eml"]["status"] == "indexed"
    assert children["badge.gif"]["status"] == "failed" and "image/gif" in children["badge.gif"]["error"]
    runbook = inline_api.get(f"/v1/documents/{children['runbook.txt']['doc_id']}").json()
    assert runbook["parent_doc_id"] == parent and runbook["filename"] == "runbook.txt"

    hits = inline_api.post("/v1/search", json={"query": "how is the marmalade pump restarted", "top_k": 1}).json()
    (hit,) = hits["results"]
    assert hit["doc_id"] == runbook["doc_id"]
    assert hit["parent_doc_id"] == parent  # search hits name the parent (silver's parent_doc_id)

    deleted = inline_api.delete(f"/v1/documents/{parent}").json()
    assert deleted["status"] == "deleted"
    after = inline_api.get("/v1/documents", params={"parent": parent}).json()["documents"]
    assert {d["status"] for d in after} == {"deleted"} and len(after) == 3
    assert inline_api.post("/v1/search", json={"query": "marmalade pump blue lever"}).json()["results"] == []


def test_an_attachment_bomb_is_reported_on_the_email(inline_api: TestClient) -> None:
    inline_api.app.state.runtime.settings.attachment_max_count = 1  # type: ignore[attr-defined]
    mail = message("Two files", "Two files, one allowed.", files=[("a.txt", b"First file."), ("b.txt", b"Second.")])
    parent = inline_api.post("/v1/documents", files={"file": ("two.eml", mail.as_bytes())}).json()["doc_id"]
    doc = inline_api.get(f"/v1/documents/{parent}").json()
    assert doc["status"] == "indexed"
    (error,) = doc["attachment_errors"]
    assert error["filename"] is None and error["error"].startswith("attachment bomb: this message has more than 1")
    listed = inline_api.get("/v1/documents", params={"parent": parent}).json()
    assert [d["filename"] for d in listed["documents"]] == ["a.txt"]
