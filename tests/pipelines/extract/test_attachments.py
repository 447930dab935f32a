"""Attachments come back from the sandbox beside the text (never in it), within their bounds."""

from __future__ import annotations

from pathlib import Path

from pipelines.contracts.documents import DocFormat
from pipelines.extract.config import AttachmentConfig, ExtractConfig
from pipelines.extract.extractor import extract_bytes, extract_unbounded
from pipelines.extract.sandbox import start_server
from tests.attachments import message, zip_of


def test_attachments_cross_the_sandbox_beside_the_text() -> None:
    start_server()  # as a worker does: the bounded child must not import the parsers under its memory limit
    inner = message("Inner", "Inner body.")
    mail = message(
        "Outer", "Outer body.", files=[("a.txt", b"Attached text about sea otters.")], messages=[inner]
    ).as_bytes()
    doc = extract_bytes(mail, doc_id="m", filename="m.eml", config=ExtractConfig(timeout_s=60))
    assert doc.format is DocFormat.eml and "Outer body." in doc.text and "sea otters" not in doc.text
    assert [(a.filename, a.content_type, a.inline) for a in doc.attachments] == [
        ("a.txt", "text/plain", False),
        ("Inner.eml", "message/rfc822", False),
    ]
    assert doc.attachments[0].data.strip() == b"Attached text about sea otters."
    assert b"Inner body." in doc.attachments[1].data and doc.attachment_errors == []


def test_bounds_are_applied_in_order_and_recorded() -> None:
    files = [(f"f{i}.txt", b"x" * 1000) for i in range(5)]
    mail = message("Many", "Body.", files=files).as_bytes()
    by_count = extract_unbounded(mail, doc_id="m", config=ExtractConfig(attachments=AttachmentConfig(max_count=3)))
    assert [a.filename for a in by_count.attachments] == ["f0.txt", "f1.txt", "f2.txt"]
    assert "more than 3 attachments" in by_count.attachment_errors[0].error
    by_size = extract_unbounded(
        mail, doc_id="m", config=ExtractConfig(attachments=AttachmentConfig(max_total_bytes=2500))
    )
    assert len(by_size.attachments) == 2 and {e.filename for e in by_size.attachment_errors} == {
        "f2.txt",
        "f3.txt",
        "f4.txt",
    }
    too_deep = extract_unbounded(mail, doc_id="m", depth=3, config=ExtractConfig())
    assert too_deep.attachments == [] and "3 level(s) below" in too_deep.attachment_errors[0].error
    assert "Body." in too_deep.text  # the message itself is still read


def test_a_zip_is_an_archive_of_its_members() -> None:
    archive = zip_of({"a/one.txt": b"One.", "two.txt": b"Two.", "big.bin": b"\0" * 100_000})
    doc = extract_unbounded(
        archive,
        doc_id="z",
        filename="z.zip",
        config=ExtractConfig(attachments=AttachmentConfig(max_total_bytes=50_000)),
    )
    assert doc.format is DocFormat.zip and "one.txt" in doc.text and "two.txt" in doc.text
    assert [a.filename for a in doc.attachments] == ["one.txt", "two.txt"]
    (refused,) = doc.attachment_errors
    assert refused.filename == "big.bin" and refused.error.startswith("attachment bomb: big.bin")


def test_outlook_inline_images_too_small_to_read_are_skipped(corpus: Path) -> None:
    data = (corpus / "eml" / "mailparser__mail_outlook_1.eml").read_bytes()  # an Outlook .msg named .eml
    doc = extract_unbounded(data, doc_id="o")
    assert doc.format is DocFormat.msg and doc.text.startswith("Newsletter")
    # Five inline images: a 100 KB banner is a document; a spacer GIF and three icons under 2 KiB are not.
    assert [(a.filename, a.inline) for a in doc.attachments] == [("newsletter.png", True)]
