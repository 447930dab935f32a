"""PDF extraction: per-page failures, encryption, empty text layers.

The damaged PDFs here are written byte by byte, not mocked: pypdf really fails on the broken page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.contracts.documents import DocFormat, PageSource
from pipelines.errors import EncryptedDocument, ExtractionError, NoTextFound
from pipelines.extract.config import ExtractConfig, OcrConfig, OcrMode
from pipelines.extract.extractor import extract_unbounded
from pipelines.extract.pdf import assemble_pdf, minimal_pdf

GOOD = (b"", b"BT /F1 12 Tf 10 50 Td (Page text that reads fine) Tj ET")
# A content stream that claims LZW compression but holds bytes no LZW decoder accepts.
CORRUPT_LZW = (b"/Filter /LZWDecode", b"\xff\xff\xff\xff\xff\xff")
# A content stream compressed with a filter that does not exist.
UNKNOWN_FILTER = (b"/Filter /NoSuchDecode", b"BT /F1 12 Tf 10 50 Td (hidden) Tj ET")


def build_pdf(pages: list[tuple[bytes, bytes]]) -> bytes:
    """A PDF with one page per (extra stream-dictionary entries, content-stream bytes), correct xref."""
    count = len(pages)
    font_id = 3 + 2 * count
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(count))
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)]
    for i, (extra, stream) in enumerate(pages):
        bodies.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, 4 + 2 * i)
        )
        bodies.append(b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(stream), extra, stream))
    bodies.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return assemble_pdf(bodies)


NO_OCR = ExtractConfig(ocr=OcrConfig(mode=OcrMode.off))


def test_a_failing_page_is_recorded_and_the_others_kept() -> None:
    doc = extract_unbounded(build_pdf([GOOD, CORRUPT_LZW, GOOD, UNKNOWN_FILTER]), doc_id="d", config=NO_OCR)
    assert doc.format is DocFormat.pdf
    assert doc.page_count == 4
    assert [e.page for e in doc.elements] == [1, 3]
    assert all(e.text == "Page text that reads fine" for e in doc.elements)
    assert [pe.page for pe in doc.page_errors] == [2, 4]
    assert doc.page_errors[0].error.startswith("PdfStreamError")
    assert "NoSuchDecode" in doc.page_errors[1].error


def test_ocr_reads_a_page_whose_text_layer_pypdf_cannot_decode() -> None:
    # pdfium renders the page pypdf could not read (it ignores the unknown filter): OCR recovers its text;
    # the page nobody can decode keeps its error.
    doc = extract_unbounded(build_pdf([GOOD, CORRUPT_LZW, GOOD, UNKNOWN_FILTER]), doc_id="d")
    assert [(e.page, e.ocr) for e in doc.elements] == [(1, False), (3, False), (4, True)]
    assert doc.elements[-1].text == "hidden"
    assert [pe.page for pe in doc.page_errors] == [2]
    assert doc.page_errors[0].error.startswith("PdfStreamError")


def test_every_page_failing_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError) as info:
        extract_unbounded(build_pdf([CORRUPT_LZW, UNKNOWN_FILTER]), doc_id="d", config=NO_OCR)
    assert type(info.value) is ExtractionError
    assert "any of the 2 page(s)" in info.value.message
    assert info.value.doc_id == "d"


def test_blank_pages_only_is_no_text() -> None:
    with pytest.raises(NoTextFound, match=r"OCR \(eng\) read no text on any of the 1 page"):
        extract_unbounded(build_pdf([(b"", b"0 0 m 100 100 l S")]), doc_id="d")


def test_minimal_pdf_roundtrip() -> None:
    assert extract_unbounded(minimal_pdf("Hello PDF"), doc_id="d").text == "Hello PDF"


def test_owner_password_only_pdfs_open(corpus: Path) -> None:
    for name, phrase in [
        ("unst__copy-protected.pdf", "LayoutParser"),
        ("pdfminer__dmca.pdf", "Digital Millennium Copyright Act"),
    ]:
        doc = extract_unbounded((corpus / "pdf" / name).read_bytes(), doc_id=name)
        assert phrase in doc.text, name
    # Empty user password, glyphs without a Unicode map: opens, the text is what the font allows.
    assert extract_unbounded((corpus / "pdf" / "pdfminer__kampo.pdf").read_bytes(), doc_id="k").text


@pytest.mark.parametrize(
    "name", ["unst__password.pdf", "pypdf__libreoffice-writer-password.pdf", "pdfminer__enc-aes-256-r6.pdf"]
)
def test_user_password_pdfs_are_encrypted_documents(corpus: Path, name: str) -> None:
    with pytest.raises(EncryptedDocument) as info:
        extract_unbounded((corpus / "pdf" / name).read_bytes(), doc_id=name)
    assert info.value.doc_id == name


def test_image_only_pdf_is_read_by_ocr_unless_it_is_off(corpus: Path) -> None:
    data = (corpus / "pdf" / "unst__loremipsum-flat.pdf").read_bytes()
    with pytest.raises(NoTextFound, match="no text layer and OCR is off"):
        extract_unbounded(data, doc_id="scan", config=NO_OCR)
    doc = extract_unbounded(data, doc_id="scan")
    assert "Lorem ipsum dolor sit amet" in doc.text and doc.pages[0].source.value == "ocr"


@pytest.mark.parametrize(
    "name", ["pdfjs__ThuluthFeatures.pdf", "pdfminer__issue-791-non-unicode-cmap.pdf", "unst__copy-protected.pdf"]
)
def test_control_characters_are_removed(corpus: Path, name: str) -> None:
    # pypdf emits NULs and other control characters for glyphs it cannot map (hundreds in the Thuluth file);
    # they must not reach the lake.
    doc = extract_unbounded((corpus / "pdf" / name).read_bytes(), doc_id=name)
    assert doc.text
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", doc.text)
    doc.text.encode("utf-8")  # no lone surrogates either


def _cid_font_pdf(cids: list[int], *, ordering: bytes = b"Japan1", to_unicode: bool = False) -> bytes:
    """A one-page PDF drawing ``cids`` with a non-embedded Adobe CID font (Identity-H), as Japanese office
    software writes it: the text layer is CIDs, and only Adobe's CMaps say which characters they are."""
    shown = b"".join(b"%04X" % cid for cid in cids)
    content = b"BT /F1 24 Tf 20 50 Td <" + shown + b"> Tj ET"
    font = b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light /Encoding /Identity-H /DescendantFonts [6 0 R]"
    font += b" /ToUnicode 8 0 R >>" if to_unicode else b" >>"
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 700 100] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        font,
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (" + ordering + b") /Supplement 2 >> /FontDescriptor 7 0 R /DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [0 -141 1000 859] /ItalicAngle 0 "
        b"/Ascent 859 /Descent -141 /CapHeight 700 /StemV 80 >>",
    ]
    return assemble_pdf(bodies)


# Adobe-Japan1 CIDs of the hiragana あ い う え お.
_KANA_CIDS = [843, 845, 847, 849, 851]


def test_a_cjk_cid_font_without_unicode_map_is_read_through_adobes_cmaps() -> None:
    # pypdf would return these CIDs as UTF-16 code units: letters of other scripts that look like text.
    doc = extract_unbounded(_cid_font_pdf(_KANA_CIDS * 5), doc_id="cid", config=ExtractConfig())
    assert "あいうえお" * 5 in doc.text.replace(" ", "")
    assert [p.source for p in doc.pages] == [PageSource.text_layer]
