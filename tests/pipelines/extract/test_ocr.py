"""OCR with the real Tesseract: scans and images made in the test are read back, page by page.

Every image here is text drawn by Pillow, so a phrase exists only in the pixels: finding it proves the
page went through OCR. Pages are small (a few lines) to keep each OCR call well under a second.
"""

from __future__ import annotations

import io
import time

import pytest
from pypdf import PdfReader, PdfWriter

from pipelines.contracts.documents import DocFormat, PageSource
from pipelines.errors import ExtractionError, ExtractionLimitExceeded, NoTextFound
from pipelines.extract.config import ExtractConfig, OcrConfig, OcrMode
from pipelines.extract.extractor import extract_bytes, extract_unbounded
from pipelines.extract.ocr import OcrDeferred, OcrUnavailable, check_ocr, needs_ocr
from pipelines.extract.pdf import minimal_pdf
from pipelines.extract.sandbox import heartbeat, run_bounded
from tests.scans import cjk_font, image_pdf, png_bomb, text_image, to_bytes

SCAN_LINES = ["Quarterly maintenance report", "The harbour crane was inspected by Ingrid Novak."]


def _config(**ocr: object) -> ExtractConfig:
    return ExtractConfig(ocr=OcrConfig(**ocr))  # type: ignore[arg-type]


def _merge(*pdfs: bytes) -> bytes:
    writer = PdfWriter()
    for pdf in pdfs:
        for page in PdfReader(io.BytesIO(pdf)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_an_image_only_pdf_is_read_by_ocr() -> None:
    data = image_pdf([text_image(SCAN_LINES)])
    assert not PdfReader(io.BytesIO(data)).pages[0].extract_text().strip()  # truly no text layer
    doc = extract_bytes(data, doc_id="scan")
    assert doc.format is DocFormat.pdf
    assert "Ingrid Novak" in doc.text
    assert [p.source for p in doc.pages] == [PageSource.ocr]
    page = doc.pages[0]
    assert page.ocr_confidence is not None and 0.6 < page.ocr_confidence <= 1.0
    assert page.chars == sum(len(e.text) for e in doc.elements)
    assert all(e.ocr and e.page == 1 for e in doc.elements)


def test_ocr_is_decided_per_page() -> None:
    text_page = minimal_pdf("This page has a real text layer with plenty of letters in it.")
    data = _merge(text_page, image_pdf([text_image(SCAN_LINES)]))
    doc = extract_bytes(data, doc_id="mixed")
    assert [(p.page, p.source) for p in doc.pages] == [(1, PageSource.text_layer), (2, PageSource.ocr)]
    assert doc.pages[0].ocr_confidence is None
    by_page = {e.page: e for e in doc.elements}
    assert not by_page[1].ocr and "real text layer" in by_page[1].text
    assert "Ingrid Novak" in doc.text and all(e.ocr for e in doc.elements if e.page == 2)


def test_ocr_off_keeps_text_layers_and_refuses_scans() -> None:
    with pytest.raises(NoTextFound, match="OCR is off"):
        extract_bytes(image_pdf([text_image(SCAN_LINES)]), doc_id="scan", config=_config(mode=OcrMode.off))
    with pytest.raises(NoTextFound, match="OCR is off"):
        extract_unbounded(to_bytes([text_image(SCAN_LINES)], "PNG"), doc_id="png", config=_config(mode=OcrMode.off))


def test_ocr_force_reads_pages_that_have_a_text_layer() -> None:
    data = minimal_pdf("Forced optical recognition")
    doc = extract_unbounded(data, doc_id="forced", config=_config(mode=OcrMode.force, dpi=300))
    assert [p.source for p in doc.pages] == [PageSource.ocr]
    assert all(e.ocr for e in doc.elements)


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_images_are_documents(fmt: str, mime: str) -> None:
    doc = extract_unbounded(to_bytes([text_image(SCAN_LINES)], fmt), doc_id=f"img-{fmt}", filename="upload.bin")
    assert doc.format is DocFormat.image and doc.mime == mime
    assert "Ingrid Novak" in doc.text
    assert doc.page_count == 1 and doc.pages[0].source is PageSource.ocr


def test_every_tiff_frame_is_a_page() -> None:
    frames = [text_image(["Fax page one: invoice 4417"]), text_image(["Fax page two: payment overdue"])]
    doc = extract_bytes(to_bytes(frames, "TIFF"), doc_id="fax")
    assert doc.format is DocFormat.image and doc.mime == "image/tiff"
    assert doc.page_count == 2 and [p.page for p in doc.pages] == [1, 2]
    assert {e.page for e in doc.elements if "4417" in e.text} == {1}
    assert {e.page for e in doc.elements if "overdue" in e.text} == {2}


def test_a_page_scanned_sideways_is_read_in_its_orientation() -> None:
    lines = [*SCAN_LINES, "Orientation is detected from the script itself, not from the file."]
    doc = extract_unbounded(to_bytes([text_image(lines, rotate=90)], "PNG"), doc_id="sideways")
    assert "Ingrid Novak" in doc.text


def test_a_decompression_bomb_image_fails_clearly_and_fast() -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionLimitExceeded, match="pixels") as caught:
        extract_bytes(png_bomb(), doc_id="bomb")
    assert caught.value.doc_id == "bomb"
    assert time.monotonic() - started < 10


def test_the_pixel_limit_is_a_setting() -> None:
    image = text_image(SCAN_LINES, width=1400)  # 1400 x 194 = 271,600 pixels
    small = _config(max_pixels=1_000_000)
    assert extract_unbounded(to_bytes([image], "PNG"), doc_id="ok", config=small).text
    wide = text_image(SCAN_LINES, width=6000)  # 6000 x 194: over a million pixels
    with pytest.raises(ExtractionLimitExceeded, match="1,000,000"):
        extract_unbounded(to_bytes([wide], "PNG"), doc_id="wide", config=small)


def test_a_page_past_its_ocr_time_bound_fails_alone() -> None:
    text_page = minimal_pdf("This page has a real text layer with plenty of letters in it.")
    data = _merge(text_page, image_pdf([text_image(SCAN_LINES)]))
    doc = extract_unbounded(data, doc_id="slow", config=_config(page_timeout_s=0.001))
    assert [e.page for e in doc.page_errors] == [2]
    assert "longer than 0.001 s" in doc.page_errors[0].error
    assert "real text layer" in doc.text
    with pytest.raises(ExtractionError, match="longer than"):
        extract_unbounded(image_pdf([text_image(SCAN_LINES)]), doc_id="slow", config=_config(page_timeout_s=0.001))


def test_an_undecodable_image_is_an_extraction_error() -> None:
    data = to_bytes([text_image(SCAN_LINES)], "PNG")
    with pytest.raises(ExtractionError) as caught:
        extract_bytes(data[:200], doc_id="cut")
    assert caught.value.doc_id == "cut" and "Traceback" not in caught.value.message


@pytest.mark.parametrize(
    "text, needed",
    [
        ("", True),
        ("  12  ", True),  # a page number stamped on a scan
        ("/g18/g152/g135/g148/g152/g139/g135/g153/g3/g145/g136/g3/g150/g138" * 5, True),  # unmapped glyph names
        ("\ue000\ue001\ue002" * 20, True),  # private-use code points
        ("The harbour crane was inspected on Monday by the yard crew.", False),
        ("Überprüfung der Kräne am Montag durch die Werftmannschaft.", False),
    ],
)
def test_a_text_layer_is_unusable_when_it_has_too_few_letters(text: str, needed: bool) -> None:
    assert needs_ocr(text) is needed


def test_a_missing_language_pack_is_a_start_error() -> None:
    check_ocr(OcrConfig(languages=("eng",)))
    with pytest.raises(OcrUnavailable, match="tesseract-ocr-xyz"):
        check_ocr(OcrConfig(languages=("eng", "xyz")))
    check_ocr(OcrConfig(mode=OcrMode.off, languages=("xyz",)))  # off: nothing to check


def test_missing_tesseract_is_a_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(OcrUnavailable, match="apt-get install tesseract-ocr"):
        check_ocr(OcrConfig())


def test_languages_accept_tesseract_and_list_syntax() -> None:
    assert OcrConfig(languages="eng+deu").languages == ("eng", "deu")  # type: ignore[arg-type]
    assert OcrConfig(languages="eng, fra").tesseract_lang == "eng+fra"  # type: ignore[arg-type]


def _three_slow_units(beat: bool) -> str:
    for _ in range(3):
        time.sleep(0.6)
        if beat:
            heartbeat()
    return "done"


def test_heartbeats_bound_long_work_per_unit_not_in_all() -> None:
    assert run_bounded(_three_slow_units, True, timeout_s=1.0, memory_mb=512, beat_s=1.0) == "done"
    with pytest.raises(ExtractionLimitExceeded, match="longer than 1 s"):
        run_bounded(_three_slow_units, False, timeout_s=1.0, memory_mb=512, beat_s=1.0)


def test_a_short_born_digital_page_keeps_its_text_layer() -> None:
    # Seven letters: sparse enough to be checked by OCR, but OCR reads nothing more, so the layer stays.
    doc = extract_unbounded(minimal_pdf("Secret!"), doc_id="short")
    assert doc.text == "Secret!" and [p.source for p in doc.pages] == [PageSource.text_layer]


def test_a_stamp_on_a_scan_does_not_hide_the_scan() -> None:
    # A scan whose only text layer is a page stamp: OCR reads far more, so the page is OCR'd.
    stamp = minimal_pdf("p. 3")
    scan = image_pdf([text_image(SCAN_LINES)])
    writer = PdfWriter(clone_from=io.BytesIO(scan))
    writer.pages[0].merge_page(PdfReader(io.BytesIO(stamp)).pages[0])
    out = io.BytesIO()
    writer.write(out)
    doc = extract_unbounded(out.getvalue(), doc_id="stamped")
    assert [p.source for p in doc.pages] == [PageSource.ocr] and "Ingrid Novak" in doc.text


def test_deferred_ocr_hands_back_scans_and_images_unread_and_reads_text_pdfs() -> None:
    """``deferred`` (the extract queue's setting when OCR has its own lane): only text layers and headers
    are looked at; a document that needs OCR raises OcrDeferred with its id, the rest is extracted as usual."""
    deferred = _config(deferred=True)
    text = minimal_pdf("This page has a real text layer with plenty of letters in it.")
    mixed = _merge(text, image_pdf([text_image(SCAN_LINES)]))
    for doc_id, data in [("scan", image_pdf([text_image(SCAN_LINES)])), ("mixed", mixed)]:
        with pytest.raises(OcrDeferred) as caught:
            extract_bytes(data, doc_id=doc_id, config=deferred)  # through the sandbox: the error crosses it
        assert caught.value.doc_id == doc_id
    with pytest.raises(OcrDeferred):
        extract_unbounded(to_bytes([text_image(SCAN_LINES)], "PNG"), doc_id="png", config=deferred)
    with pytest.raises(OcrDeferred):
        extract_unbounded(text, doc_id="forced", config=_config(deferred=True, mode=OcrMode.force))
    # A text PDF is read where it is, and a decompression bomb still fails at once, never handed on.
    assert [p.source for p in extract_bytes(text, doc_id="text", config=deferred).pages] == [PageSource.text_layer]
    with pytest.raises(ExtractionLimitExceeded, match="pixels"):
        extract_unbounded(png_bomb(), doc_id="bomb", config=deferred)
    # With OCR off nothing is deferred: a scan has no text, as without a lane.
    with pytest.raises(NoTextFound, match="OCR is off"):
        extract_unbounded(
            image_pdf([text_image(SCAN_LINES)]), doc_id="off", config=_config(deferred=True, mode=OcrMode.off)
        )


# Japanese lines long enough for Tesseract's script detection (it wants ~50 characters on the page).
JAPANESE_LINES = [
    "港のクレーンの保守点検について報告します。",
    "担当者は山田花子さんで、昨日すべての部品を確認しました。",
    "次回の点検は来月の第二週に予定されています。",
]


def test_a_page_in_another_script_is_read_with_its_detected_pack() -> None:
    image = text_image(JAPANESE_LINES, font_file=cjk_font(), font_size=40)
    doc = extract_bytes(to_bytes([image], "PNG"), doc_id="jp-scan")
    assert "山田花子" in doc.text and "点検" in doc.text
    languages = doc.pages[0].ocr_languages
    assert languages is not None and languages.split("+")[0] == "jpn" and languages.endswith("+eng")
    # Han and kana are joined without the spaces Tesseract's word boxes would leave between them.
    assert "報告します" in doc.text


def test_without_script_detection_only_the_configured_packs_read() -> None:
    image = text_image(JAPANESE_LINES, font_file=cjk_font(), font_size=40)
    doc = extract_unbounded(to_bytes([image], "PNG"), doc_id="jp-eng", config=_config(script_detect=False))
    assert doc.pages[0].ocr_languages == "eng"
    assert "山田花子" not in doc.text


def test_a_short_line_in_another_script_is_read_by_the_script_packs() -> None:
    # Too few characters for script detection: the configured pack's low-confidence guess is replaced by
    # the reading of the installed script packs.
    image = text_image(["日本語の見出し"], font_file=cjk_font(), font_size=48, width=700)
    doc = extract_unbounded(to_bytes([image], "PNG"), doc_id="jp-short")
    assert "日本語" in doc.text
    assert "jpn" in (doc.pages[0].ocr_languages or "").split("+")


def test_latin_pages_keep_the_configured_languages() -> None:
    doc = extract_unbounded(to_bytes([text_image(SCAN_LINES)], "PNG"), doc_id="latin")
    assert doc.pages[0].ocr_languages == "eng"
    assert "Ingrid Novak" in doc.text
