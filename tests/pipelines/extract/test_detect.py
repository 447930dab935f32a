"""Format detection from bytes, and decoding of text in any encoding."""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import Path

import pytest

from pipelines.contracts.documents import DocFormat
from pipelines.errors import EncryptedDocument, ExtractionError, NoTextFound, UnsupportedFormat
from pipelines.extract.detect import detect_format
from pipelines.extract.encoding import decode_text
from pipelines.extract.extractor import extract_unbounded

FOLDER_FORMATS = {
    "pdf": DocFormat.pdf,
    "docx": DocFormat.docx,
    "pptx": DocFormat.pptx,
    "xlsx": DocFormat.xlsx,
    "html": DocFormat.html,
    "md": DocFormat.markdown,
    "eml": DocFormat.eml,
    "txt": DocFormat.text,
    "csv": DocFormat.csv,
}

# Files whose folder does not say what detection must answer.
DETECT_EXCEPTIONS: dict[str, type[Exception]] = {
    "docx/poi__bug53475-password-is-pass.docx": EncryptedDocument,
    "docx/poi__protected_agile.docx": EncryptedDocument,
    "xlsx/unst__password_protected.xlsx": EncryptedDocument,
    "docx/poi__truncated62886.docx": ExtractionError,
    "docx/poi__clusterfuzz-5313273089884160.docx": ExtractionError,
    "pptx/poi__clusterfuzz-6254434927378432.pptx": ExtractionError,
    "pptx/poi__Divino_Revelado.pptx": ExtractionError,
    "eml/unst__empty.eml": NoTextFound,
    "txt/unst__empty.txt": NoTextFound,
    "txt/unst__fake-text-all-whitespace.txt": NoTextFound,
}

# Files of a folder that are another format than the folder's, whatever their name says.
DETECTED_AS: dict[str, DocFormat] = {
    "eml/mailparser__mail_outlook_1.eml": DocFormat.msg,  # an Outlook .msg (OLE2) named .eml
}

OTHER_FOLDER: dict[str, DocFormat | type[Exception]] = {
    "unst__eng_spa_mult.doc": DocFormat.docx,  # a DOCX named .doc
    "unst__eng_spa_mult.ppt": DocFormat.pptx,  # a PPTX named .ppt
    "poi__PPTWithAttachments.pptm": DocFormat.pptx,
    "unst__fake-email.txt": DocFormat.eml,  # an email named .txt
    "unst__fake-doc.rtf": DocFormat.rtf,
    "unst__fake.odt": DocFormat.odt,
    "unst__winter-sports.epub": DocFormat.epub,
    "unst__layout-parser-paper-fast.jpg": DocFormat.image,
    "unst__fake.doc": UnsupportedFormat,
    "unst__fake-power-point.ppt": UnsupportedFormat,
    "unst__tests-example.xls": DocFormat.xls,
    "unst__fake-email.msg": DocFormat.msg,
}


def _corpus_files(corpus: Path, folder: str) -> list[Path]:
    return sorted(p for p in (corpus / folder).iterdir() if p.is_file())


@pytest.mark.parametrize("folder", sorted(FOLDER_FORMATS))
def test_corpus_folders_are_detected_as_their_format(corpus: Path, folder: str) -> None:
    for path in _corpus_files(corpus, folder):
        rel = f"{folder}/{path.name}"
        data = path.read_bytes()
        if rel in DETECT_EXCEPTIONS:
            with pytest.raises(DETECT_EXCEPTIONS[rel]) as info:
                detect_format(data, filename=path.name, doc_id=rel)
            assert info.value.doc_id == rel  # type: ignore[attr-defined]
            continue
        fmt, mime = detect_format(data, filename=path.name, doc_id=rel)
        assert fmt is DETECTED_AS.get(rel, FOLDER_FORMATS[folder]), rel
        assert mime


def test_detection_ignores_misleading_extensions(corpus: Path) -> None:
    for name, expected in OTHER_FOLDER.items():
        data = (corpus / "other" / name).read_bytes()
        if isinstance(expected, DocFormat):
            assert detect_format(data, filename=name)[0] is expected, name
            assert detect_format(data)[0] is expected, f"{name} without a filename"
        else:
            with pytest.raises(expected):
                detect_format(data, filename=name, doc_id=name)


def test_extension_only_breaks_ties_between_text_formats() -> None:
    markdown = b"# Title\n\nSome *text*.\n"
    assert detect_format(markdown, filename="notes.md")[0] is DocFormat.markdown
    assert detect_format(markdown, filename="notes.txt")[0] is DocFormat.text
    assert detect_format(markdown)[0] is DocFormat.text
    table = b"a,b\n1,2\n"
    assert detect_format(table, filename="t.csv") == (DocFormat.csv, "text/csv")
    assert detect_format(b"a\tb\n1\t2\n", filename="t.TSV") == (DocFormat.csv, "text/tab-separated-values")
    # content wins over the extension
    assert detect_format(b"<!DOCTYPE html><html><body><p>x</p></body></html>", filename="x.txt")[0] is DocFormat.html
    assert detect_format(b"%PDF-1.4\n...", filename="x.txt")[0] is DocFormat.pdf


def test_html_markers() -> None:
    assert detect_format(b"<div>\n  <p>Test page</p>\n</div>")[0] is DocFormat.html
    assert detect_format(b'<?xml version="1.0"?>\n<!-- c -->\n<html><p>x</p></html>')[0] is DocFormat.html
    # Markdown may open with inline HTML; with a .md name it stays Markdown.
    readme = b'<div align="center"><img src="logo.png"></div>\n\n# Project\n\nText.\n'
    assert detect_format(readme, filename="README.md")[0] is DocFormat.markdown
    assert detect_format(b"x < y and y > z, so <b is not a tag", filename="a.txt")[0] is DocFormat.text


def test_email_headers() -> None:
    mail = b"From: a@example.com\nTo: b@example.com\nSubject: Hi\n\nBody.\n"
    assert detect_format(mail, filename="mail.txt")[0] is DocFormat.eml
    assert detect_format(b"From someone Wed Jul 16 06:24:10 2008\n" + mail)[0] is DocFormat.eml  # mbox
    # One header-like line is not an email; nor is Markdown front matter with unknown keys.
    assert detect_format(b"Subject: notes\n\nText.\n")[0] is DocFormat.text
    assert detect_format(b"Title: x\nAuthor: y\n\n# Body\n", filename="a.md")[0] is DocFormat.markdown


def test_empty_and_binary_input() -> None:
    with pytest.raises(NoTextFound):
        detect_format(b"", doc_id="d")
    with pytest.raises(NoTextFound):
        detect_format(b" \n\t\r\n")
    with pytest.raises(NoTextFound):
        detect_format(codecs.BOM_UTF16_LE + " \n".encode("utf-16-le"))
    with pytest.raises(UnsupportedFormat):
        detect_format(bytes(range(256)) * 8)
    # Images are documents (read by OCR), told from their magic bytes whatever the name; GIF is not.
    assert detect_format(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, filename="x.txt") == (DocFormat.image, "image/png")
    assert detect_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == (DocFormat.image, "image/webp")
    assert detect_format(b"II*\x00" + b"\x00" * 100) == (DocFormat.image, "image/tiff")
    with pytest.raises(UnsupportedFormat, match="image/gif"):
        detect_format(b"GIF89a" + b"\x00" * 100)
    with pytest.raises(UnsupportedFormat):
        detect_format(b"PK\x03\x04" + b"\x00" * 200)  # a damaged zip with no OOXML parts in sight


def test_a_zip_that_is_no_office_package_is_an_archive() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
    assert detect_format(out.getvalue(), filename="bundle.zip") == (DocFormat.zip, "application/zip")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:  # a "mimetype" member names another format (here a spreadsheet)
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(UnsupportedFormat, match=r"opendocument\.spreadsheet"):
        detect_format(out.getvalue())


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_unicode_encodings_decode_with_or_without_bom(encoding: str) -> None:
    text = "Größe und Maß — naïve café, 東京\n" * 20
    decoded = decode_text(text.encode(encoding))
    assert decoded is not None
    assert decoded.text.lstrip("\ufeff") == text


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_non_latin_utf16_without_bom_decodes(encoding: str) -> None:
    text = "Привет, мир! Это тест кодировки без метки порядка байтов. " * 20
    decoded = decode_text(text.encode(encoding))
    assert decoded is not None and decoded.text == text


def test_legacy_code_pages_decode() -> None:
    text = "El niño comió paella con ñoquis. Der Preis betrug 15,50 €. L'été était très chaud."
    decoded = decode_text(text.encode("cp1252"))
    assert decoded is not None and decoded.text == text
    declared = b'<html><head><meta charset="iso-8859-15"></head><body>' + "Prix: 5 €".encode("iso-8859-15")
    decoded = decode_text(declared)
    assert decoded is not None and decoded.text.endswith("Prix: 5 €")


def test_corpus_encodings_decode_to_the_same_text(corpus: Path) -> None:
    def text_of(rel: str) -> str:
        path = corpus / rel
        return extract_unbounded(path.read_bytes(), doc_id=rel, filename=path.name).text

    reference = text_of("txt/unst__fake-text.txt")
    for rel in (
        "txt/unst__fake-text-utf-16.txt",
        "txt/unst__fake-text-utf-16-be.txt",
        "txt/unst__fake-text-utf-32.txt",
    ):
        assert text_of(rel) == reference, rel
    assert text_of("md/unst__umlauts-non-utf8.md") == text_of("md/unst__umlauts-utf8.md")
    assert text_of("html/unst__example-steelJIS-datasheet-utf-16.html") == text_of(
        "html/unst__example-steelJIS-datasheet.html"
    )
    assert text_of("eml/unst__fake-email-utf-16.eml") == text_of("eml/unst__fake-email.eml")
    assert text_of("csv/unst__stanley-cups-utf-16.csv") == text_of("csv/unst__stanley-cups.tsv")
    cp1252 = text_of("html/unst__fake-html-cp1252.html")
    assert "15,50 €" in cp1252 and "Kvinnan åt köttbullar" in cp1252 and "ñ" in cp1252


def test_ooxml_main_part_is_found_by_content_type(corpus: Path, tmp_path: Path) -> None:
    # Some generators name the main part word/document2.xml; the package's content types still say DOCX.
    source = zipfile.ZipFile(corpus / "docx" / "unst__simple.docx")
    renamed = tmp_path / "renamed.docx"
    with zipfile.ZipFile(renamed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            name = info.filename.replace("word/document.xml", "word/document2.xml").replace(
                "word/_rels/document.xml.rels", "word/_rels/document2.xml.rels"
            )
            if info.filename in ("[Content_Types].xml", "_rels/.rels"):
                data = data.replace(b"/word/document.xml", b"/word/document2.xml").replace(
                    b'"word/document.xml"', b'"word/document2.xml"'
                )
            out.writestr(name, data)
    data = renamed.read_bytes()
    assert "word/document.xml" not in zipfile.ZipFile(renamed).namelist()
    assert detect_format(data, filename="renamed.bin")[0] is DocFormat.docx
    assert (
        extract_unbounded(data, doc_id="r").text
        == extract_unbounded((corpus / "docx" / "unst__simple.docx").read_bytes(), doc_id="s").text
    )


def test_text_that_mentions_pdf_is_not_a_pdf() -> None:
    assert detect_format(b"Notes on file headers: a PDF starts with %PDF-1.7 and ends with %%EOF?\n")[0] is (
        DocFormat.text
    )
    assert detect_format(b"\r\n\r\n%PDF-1.4\n1 0 obj\n<< >>\nendobj\n")[0] is DocFormat.pdf  # junk before header
