"""E-mail attachments and archive members as child documents: links, search, new versions, delete, purge, bombs.

Real steps against real Delta tables, LanceDB, the model and Tesseract; the messages are built here with
the stdlib ``email`` package, so every phrase searched for exists only inside one attachment.
"""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.ids import DEFAULT_TENANT, attachment_doc_id
from pipelines.contracts.search import SearchQuery
from pipelines.ingest.lifecycle import delete_document
from pipelines.ingest.runner import StepOutcome, process_inline
from pipelines.lakehouse.documents import get_children, get_document, get_documents, to_record
from pipelines.lakehouse.schemas import DOCUMENTS, RAW_OBJECTS
from pipelines.ops.purge import PurgeParams, purge
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from tests.attachments import GIF, message, ocr_png, pdf, zip_of
from tests.steps import register_one

T = DEFAULT_TENANT


def _ingest(rt: Runtime, data: bytes, filename: str, **kw: Any) -> tuple[str, dict[str, StepOutcome]]:
    result = register_one(rt, data, filename=filename, **kw)
    outcomes = process_inline(rt, T, {result.doc_id: result.version})
    assert outcomes[result.doc_id].state == "done", outcomes[result.doc_id]
    return result.doc_id, outcomes


def _children(rt: Runtime, parent: str) -> dict[str, dict[str, Any]]:
    """A document's live children by filename."""
    return {row["filename"]: row for row in get_children(rt.lake, T, [parent]).get(parent, [])}


def _found_in(rt: Runtime, phrase: str) -> set[str]:
    return {h.doc_id for h in search(rt, SearchQuery(query=phrase, top_k=5, mode="keyword"))}


# Built once: a message's MIME boundaries are random, and the same forwarded message must be the same bytes
# in both versions of the e-mail below.
_HERON = email.message_from_bytes(
    message(
        "Heron sighting",
        "The violet heron nests by the old mill.",
        files=[("heron.txt", b"Heron census: eleven violet herons counted at dawn.")],
    ).as_bytes(),
    policy=email.policy.default,
)
_SCAN = ocr_png(["Pelican harbour schedule", "Ferry departs at noon"])


def _weekly(*, notes: str, with_pdf: bool) -> bytes:
    heron = _HERON
    files = [("notes.txt", notes.encode()), ("logo.gif", GIF)]
    if with_pdf:
        files.insert(1, ("report.pdf", pdf("Quarterly zebra migration report for the savanna team")))
    return message(
        "Weekly ops",
        "Please read the attached notes before Friday.",
        files=files,
        messages=[heron],
        inline_png=_SCAN,
    ).as_bytes()


def test_attachments_are_linked_searchable_documents_replaced_by_new_versions_and_deleted_with_the_email(
    runtime: Runtime,
) -> None:
    parent, outcomes = _ingest(
        runtime,
        _weekly(notes="The copper kettle inventory lists nine kettles.", with_pdf=True),
        "weekly.eml",
        metadata={"team": "ops"},
    )
    record = to_record(get_document(runtime.lake, T, parent) or {})
    assert record.status is DocumentStatus.indexed and record.format == "eml" and record.parent_doc_id is None
    assert record.attachment_errors == []

    children = _children(runtime, parent)
    assert set(children) == {"notes.txt", "report.pdf", "logo.gif", "Heron sighting.eml", "scan.png"}
    for name, row in children.items():
        assert row["parent_doc_id"] == parent
        assert row["doc_id"] == attachment_doc_id(parent, name, 0)  # derived: a re-run finds the same ids
        assert json.loads(row["metadata_json"]) == {"team": "ops"}  # inherited from the e-mail
        assert outcomes[row["doc_id"]].state == ("failed" if name == "logo.gif" else "done")
    # An unsupported attachment fails alone, with its reason; the e-mail and the others are indexed.
    assert children["logo.gif"]["status"] == DocumentStatus.failed
    assert "unsupported format image/gif" in children["logo.gif"]["error"]
    assert {r["status"] for n, r in children.items() if n != "logo.gif"} == {DocumentStatus.indexed}
    assert children["scan.png"]["format"] == "image" and children["report.pdf"]["format"] == "pdf"
    # The nested message opened its own attachment, one level deeper.
    heron = children["Heron sighting.eml"]["doc_id"]
    (census,) = _children(runtime, heron).values()
    assert census["filename"] == "heron.txt" and census["status"] == DocumentStatus.indexed

    # Every child is found by a phrase that exists only inside it (the inline image: only in its pixels).
    assert _found_in(runtime, "copper kettle inventory") == {children["notes.txt"]["doc_id"]}
    assert _found_in(runtime, "zebra migration") == {children["report.pdf"]["doc_id"]}
    assert children["scan.png"]["doc_id"] in _found_in(runtime, "pelican harbour schedule")
    assert _found_in(runtime, "nests by the old mill") == {heron}
    assert _found_in(runtime, "census at dawn") == {census["doc_id"]}

    # Processing the same version again changes nothing (the children are duplicates).
    again = process_inline(runtime, T, {parent: record.version})
    assert again[parent].state == "done" and set(again) == {parent}
    assert {r["doc_id"]: r["version"] for r in _children(runtime, parent).values()} == {
        r["doc_id"]: r["version"] for r in children.values()
    }

    # A new version: the PDF is gone, the notes changed, the rest is the same.
    register_one(
        runtime,
        _weekly(notes="The copper kettle inventory now lists twelve kettles.", with_pdf=False),
        filename="weekly.eml",
        doc_id=parent,
    )
    current = get_document(runtime.lake, T, parent) or {}
    assert process_inline(runtime, T, {parent: current["version"]})[parent].state == "done"
    replaced = _children(runtime, parent)
    assert set(replaced) == {"notes.txt", "logo.gif", "Heron sighting.eml", "scan.png"}
    assert replaced["notes.txt"]["version"] == 2 and replaced["notes.txt"]["status"] == DocumentStatus.indexed
    assert replaced["Heron sighting.eml"]["version"] == 1 and replaced["scan.png"]["version"] == 1
    assert replaced["logo.gif"]["version"] == 2  # a failed child is retried by its parent's new version
    gone = get_document(runtime.lake, T, children["report.pdf"]["doc_id"]) or {}
    assert gone["status"] == DocumentStatus.deleted and gone["parent_doc_id"] == parent
    assert _found_in(runtime, "zebra migration") == set()
    assert _found_in(runtime, "twelve kettles") == {replaced["notes.txt"]["doc_id"]}

    # Deleting one attachment leaves the e-mail alone ...
    delete_document(runtime, T, replaced["scan.png"]["doc_id"])
    assert (get_document(runtime.lake, T, parent) or {})["status"] == DocumentStatus.indexed
    # ... deleting the e-mail deletes its attachments, at every level.
    delete_document(runtime, T, parent)
    family = [parent, heron, census["doc_id"], *(r["doc_id"] for r in replaced.values())]
    assert {r["status"] for r in get_documents(runtime.lake, T, family).values()} == {DocumentStatus.deleted}
    for phrase in ("copper kettle", "old mill", "census at dawn", "pelican harbour"):
        assert _found_in(runtime, phrase) == set(), phrase


def test_attachment_bombs_are_refused_on_their_container_which_is_still_indexed(runtime: Runtime) -> None:
    runtime.settings.attachment_max_count = 2
    runtime.settings.attachment_max_depth = 1
    # More attachments than the bound ...
    many = message(
        "Flood of files",
        "Four files follow.",
        files=[(f"part{i}.txt", f"Fragment {i} text.".encode()) for i in range(4)],
    )
    # ... and messages nested deeper than the bound: outer → middle (level 1) → inner (level 2, refused).
    inner = message("Innermost", "The innermost message about the obsidian lighthouse.")
    middle = message("Middle", "The middle message about the granite bridge.", messages=[inner])
    nested = message("Russian doll", "A message inside a message inside a message.", messages=[middle])
    flood = register_one(runtime, many.as_bytes(), filename="flood.eml")
    doll = register_one(runtime, nested.as_bytes(), filename="doll.eml")
    outcomes = process_inline(runtime, T, {flood.doc_id: flood.version, doll.doc_id: doll.version})
    assert outcomes[flood.doc_id].state == "done" and outcomes[doll.doc_id].state == "done"

    record = to_record(get_document(runtime.lake, T, flood.doc_id) or {})
    assert record.status is DocumentStatus.indexed
    assert set(_children(runtime, flood.doc_id)) == {"part0.txt", "part1.txt"}  # the first two, in order
    (error,) = record.attachment_errors
    assert error.error.startswith("attachment bomb: this message has more than 2 attachments")
    assert "DOCLAKE_ATTACHMENT_MAX_COUNT" in error.error and "2 were not" in error.error

    (middle_row,) = _children(runtime, doll.doc_id).values()
    assert middle_row["status"] == DocumentStatus.indexed and _children(runtime, middle_row["doc_id"]) == {}
    middle_record = to_record(middle_row)
    (deep,) = middle_record.attachment_errors
    assert deep.error.startswith("attachment bomb: 1 attachment(s) not extracted")
    assert "DOCLAKE_ATTACHMENT_MAX_DEPTH" in deep.error
    assert _found_in(runtime, "granite bridge") == {middle_row["doc_id"]}
    assert _found_in(runtime, "obsidian lighthouse") == set()


def test_zip_attachments_are_unpacked_bounded_and_purged_with_the_email(runtime: Runtime, settings: Any) -> None:
    runtime.settings.attachment_max_mb = 5
    archive = zip_of(
        {
            "docs/alpha.txt": b"Alpha memo about the saffron warehouse.",
            "__MACOSX/docs/._alpha.txt": b"\x00\x05\x16\x07 resource fork",
            "inner.zip": zip_of({"beta.txt": b"Beta memo about the cobalt quarry."}),
            # 8 MB of zeros deflate to a few kilobytes: its declared size is refused before it is inflated.
            "zeros.bin": b"\x00" * (8 * 1024 * 1024),
        }
    )
    assert len(archive) < 100_000
    mail = message("Archive", "The archive is attached.", files=[("bundle.zip", archive)])
    parent, _ = _ingest(runtime, mail.as_bytes(), "archive.eml")

    (bundle,) = _children(runtime, parent).values()
    assert bundle["filename"] == "bundle.zip" and bundle["format"] == "zip" and bundle["status"] == "indexed"
    members = _children(runtime, bundle["doc_id"])
    assert set(members) == {"alpha.txt", "inner.zip"}  # the resource fork is skipped, the bomb refused
    (bomb,) = to_record(bundle).attachment_errors
    assert bomb.filename == "zeros.bin" and bomb.error.startswith("attachment bomb: zeros.bin (8.0 MB)")
    (beta,) = _children(runtime, members["inner.zip"]["doc_id"]).values()
    assert beta["status"] == DocumentStatus.indexed
    assert _found_in(runtime, "saffron warehouse") == {members["alpha.txt"]["doc_id"]}
    assert _found_in(runtime, "cobalt quarry") == {beta["doc_id"]}
    assert bundle["doc_id"] in _found_in(runtime, "alpha.txt")  # an archive's text names its files

    family = {parent, bundle["doc_id"], beta["doc_id"], *(m["doc_id"] for m in members.values())}
    report = purge(runtime, PurgeParams(tenant=T, doc_ids=[parent], vacuum=False))
    assert set(report.doc_ids) == family
    ids = ", ".join(f"'{d}'" for d in sorted(family))
    for spec in (DOCUMENTS, RAW_OBJECTS):
        assert runtime.lake.read(spec, f"doc_id IN ({ids})", columns=["doc_id"]).num_rows == 0
    assert _found_in(runtime, "cobalt quarry") == set()


def test_outlook_msg_is_indexed(runtime: Runtime, corpus: Path) -> None:
    data = (corpus / "other" / "unst__fake-email.msg").read_bytes()
    doc_id, _ = _ingest(runtime, data, "fake-email.msg")
    row = get_document(runtime.lake, T, doc_id, with_text=True) or {}
    assert row["status"] == DocumentStatus.indexed and row["format"] == "msg"
    assert row["mime"] == "application/vnd.ms-outlook"
    assert row["text"].startswith("Test Email") and "Roses are red" in row["text"]
    assert doc_id in _found_in(runtime, "violets are blue")
