"""RTF, OpenDocument text, EPUB (through pandoc) and legacy Excel .xls: files made in the test, found by a phrase.

The ODT and EPUB files are written by pandoc itself from Markdown, a real producer of both formats; the
RTF is written by hand, as small RTF files usually are. Detection is from the bytes: every file is
handed over without a name.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from pipelines.contracts.documents import DocFormat, ElementKind
from pipelines.errors import ExtractionError, ExtractionLimitExceeded, UnsupportedFormat
from pipelines.extract.config import ExtractConfig
from pipelines.extract.detect import detect_format
from pipelines.extract.extractor import extract_bytes
from pipelines.extract.pandoc import pandoc_html

pytestmark = pytest.mark.usefixtures("warmed_extractors")

MARKDOWN = """# Harbour crane maintenance

The harbour crane was inspected by Ingrid Novak on Tuesday.

| Part | Owner |
|------|-------|
| Hoist | Team Kestrel |
| Slewing ring | Team Osprey |
"""

RTF = (
    rb"{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}"
    rb"{\pard\outlinelevel0\b\fs32 Harbour crane maintenance\par}"  # a heading: Word writes its outline level
    rb"{\pard The harbour crane was inspected by Ingrid Novak on Tuesday.\par}"
    rb"{\pard Caf\'e9 opening hours follow.\par}}"
)


def _pandoc(fmt: str) -> bytes:
    """``MARKDOWN`` written as ``fmt`` (odt, epub) by pandoc."""
    return subprocess.run(
        ["pandoc", "-f", "markdown", "-t", fmt, "-o", "-", "--metadata", "title=Maintenance"],
        input=MARKDOWN.encode(),
        capture_output=True,
        check=True,
    ).stdout


def test_rtf_is_detected_and_read() -> None:
    assert detect_format(RTF) == (DocFormat.rtf, "application/rtf")
    doc = extract_bytes(RTF, doc_id="rtf")
    assert doc.format is DocFormat.rtf
    assert "inspected by Ingrid Novak" in doc.text
    assert "Café opening hours" in doc.text  # RTF's \'e9 escape decoded
    assert doc.elements[0].kind is ElementKind.title and doc.elements[0].text == "Harbour crane maintenance"


@pytest.mark.parametrize(
    "fmt, mime", [("odt", "application/vnd.oasis.opendocument.text"), ("epub", "application/epub+zip")]
)
def test_odt_and_epub_are_detected_and_read_with_their_tables(fmt: str, mime: str) -> None:
    data = _pandoc(fmt)
    assert detect_format(data) == (DocFormat(fmt), mime)
    doc = extract_bytes(data, doc_id=fmt)
    assert doc.format is DocFormat(fmt) and doc.mime == mime
    assert "inspected by Ingrid Novak" in doc.text
    tables = [e for e in doc.elements if e.kind is ElementKind.table]
    assert tables and "Slewing ring | Team Osprey" in tables[0].text
    assert any(e.kind is ElementKind.title and "Harbour crane maintenance" in e.text for e in doc.elements)


def test_a_damaged_epub_fails_with_pandocs_reason() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", "<container/>")  # no package document
    with pytest.raises(ExtractionError, match="could not parse the EPUB file: pandoc"):
        extract_bytes(out.getvalue(), doc_id="bad-epub")


def test_pandoc_is_bounded_in_time() -> None:
    # A book-sized RTF cannot be converted in a millisecond: the bound stops pandoc and says so.
    big = b"{\\rtf1\\ansi " + b"{\\pard Paragraph of a long report.\\par}" * 200_000 + b"}"
    with pytest.raises(ExtractionLimitExceeded, match="took longer than"):
        pandoc_html(big, "rtf", doc_id="slow", timeout_s=0.001)


def test_legacy_excel_is_read_sheet_by_sheet(corpus: Path) -> None:
    data = (corpus / "other" / "unst__tests-example.xls").read_bytes()
    assert detect_format(data) == (DocFormat.xls, "application/vnd.ms-excel")
    doc = extract_bytes(data, doc_id="xls", config=ExtractConfig())
    assert "Question Format Abbreviations" in doc.text
    sheets = [e.text for e in doc.elements if e.kind is ElementKind.title and e.level == 0]
    assert sheets[:3] == ["Example Test", "Format Abbr.", "Readme"]


def test_legacy_word_and_powerpoint_are_refused_with_a_reason(corpus: Path) -> None:
    with pytest.raises(UnsupportedFormat, match=r"legacy Word \.doc"):
        detect_format((corpus / "other" / "unst__fake.doc").read_bytes())
    with pytest.raises(UnsupportedFormat, match=r"legacy PowerPoint \.ppt"):
        detect_format((corpus / "other" / "unst__fake-power-point.ppt").read_bytes())
