"""Optical character recognition of page images with Tesseract, through pytesseract.

Why Tesseract through pytesseract: it is the OCR engine Debian packages with 160+ language packs, needs
no model download (unstructured's ``hi_res`` and table models, and Docling's PDF pipeline, fetch
weights from a hub, which a deployment without internet cannot), and pytesseract runs it as a child
process per page, so a page that makes the engine hang or balloon is killed alone (its ``timeout``)
and inherits the extraction sandbox's address-space bound. unstructured's ``ocr_only`` strategy would
also call Tesseract, but it imports unstructured-inference (torch, timm, OpenCV) into every extraction
child and routes PDFs through its own detection, bypassing our per-page decisions and limits.

One OCR thread per page: Tesseract's OpenMP threads would otherwise take both cores from the embedding
worker on the embedded profile; a single thread is also faster per page on small machines.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.errors import ConfigError, DocLakeError, ExtractionError
from pipelines.extract.config import OcrConfig, OcrMode

__all__ = [
    "OcrDeferred",
    "OcrPage",
    "OcrPageFailed",
    "OcrUnavailable",
    "check_ocr",
    "needs_ocr",
    "ocr_image",
    "text_layer_quality",
]

# Fewer letters than this on a page means "no text layer": a scan often carries a stamp, a page number
# or a few glyphs of a running head as text while its content is only an image.
_MIN_LETTERS = 20
# Below this share of letters among visible characters, a text layer is garbage (glyphs without a Unicode
# mapping come out as symbols, private-use code points or U+FFFD).
_MIN_LETTER_SHARE = 0.5


class OcrUnavailable(ConfigError):
    """Tesseract or a configured language pack is missing: a start-up error, not a document's."""

    code = "ocr_unavailable"


class OcrPageFailed(ExtractionError):
    """One page's OCR failed (timeout, engine error); recorded in ``page_errors``, the document goes on."""


class OcrDeferred(DocLakeError):
    """The document needs OCR and ``OcrConfig.deferred`` is set: nothing was read; extract it where OCR runs.

    Not a failure: the extract step hands such a document to the OCR lane (``Extracted.needs_ocr``).
    """

    code = "ocr_deferred"


@dataclass(frozen=True)
class OcrPage:
    paragraphs: list[str]
    confidence: float | None
    """Mean word confidence, 0-1; None when no word was recognised."""


def check_ocr(config: OcrConfig) -> None:
    """Check that OCR can run as configured (no-op when it is off).

    Raises:
        OcrUnavailable: no ``tesseract`` binary, or a language pack in ``config.languages`` is not installed;
            the message names the Debian package to install and the setting that turns OCR off.
    """
    if config.mode is OcrMode.off:
        return
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise OcrUnavailable(
            "OCR needs Tesseract, which is not installed: `apt-get install tesseract-ocr tesseract-ocr-eng "
            "tesseract-ocr-osd` (scripts/setup.sh does it), or set DOCLAKE_OCR=off"
        )
    try:
        installed = set(pytesseract.get_languages(config=""))
    except Exception as e:  # a broken installation: say so at start rather than on every page
        raise OcrUnavailable(f"Tesseract does not run: {type(e).__name__}: {e}") from e
    missing = [lang for lang in config.languages if lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in missing)
        raise OcrUnavailable(
            f"OCR language pack(s) not installed: {', '.join(missing)} (installed: {', '.join(sorted(installed))}); "
            f"install {packages} or change DOCLAKE_OCR_LANGUAGES"
        )


def needs_ocr(text: str) -> bool:
    """True when a page's text layer is missing or unusable (too few letters, or mostly non-letters)."""
    return text_layer_quality(text) != "ok"


def text_layer_quality(text: str) -> Literal["ok", "sparse", "garbage"]:
    """``garbage``: mostly non-letters (unmapped glyphs); ``sparse``: real but under a handful of letters
    (a stamp on a scan, or a short born-digital page); ``ok`` otherwise."""
    letters = 0
    visible = 0
    for ch in text:
        if ch.isspace():
            continue
        visible += 1
        # Private-use code points are what unmapped glyphs often become; isalpha() is False for them.
        if ch.isalpha() and unicodedata.category(ch) != "Co":
            letters += 1
    if letters < _MIN_LETTER_SHARE * visible:
        return "garbage"
    return "sparse" if letters < _MIN_LETTERS else "ok"


def ocr_image(image: Any, config: OcrConfig, *, page: int, doc_id: str | None = None) -> OcrPage:
    """Recognise the text of one page image (a Pillow image), paragraph by paragraph.

    Raises:
        OcrPageFailed: Tesseract failed or ran past ``config.page_timeout_s``.
    """
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    if image.mode not in ("RGB", "L", "1"):
        image = image.convert("RGB")
    try:
        data = pytesseract.image_to_data(
            image,
            lang=config.tesseract_lang,
            # Page segmentation with orientation and script detection: a page scanned sideways or upside
            # down is read in its own orientation (needs the osd pack; without it Tesseract falls back).
            config="--psm 1",
            output_type=pytesseract.Output.DICT,
            timeout=config.page_timeout_s,
        )
    except RuntimeError as e:  # pytesseract's timeout
        raise OcrPageFailed(
            f"OCR of page {page} took longer than {config.page_timeout_s:g} s and was stopped", doc_id=doc_id
        ) from e
    except pytesseract.TesseractError as e:
        raise OcrPageFailed(f"OCR of page {page} failed: {e.message or e.status}", doc_id=doc_id) from e
    return _paragraphs(data)


def _paragraphs(data: dict[str, list[Any]]) -> OcrPage:
    """Group Tesseract's words into paragraphs (lines joined by newlines) and average their confidence."""
    paragraphs: list[str] = []
    lines: list[list[str]] = []
    key: tuple[int, int] | None = None
    line_key: int | None = None
    confidences: list[float] = []

    def close() -> None:
        text = "\n".join(" ".join(words) for words in lines if words)
        if text.strip():
            paragraphs.append(text)

    for i, word in enumerate(data["text"]):
        word = str(word).strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        this = (int(data["block_num"][i]), int(data["par_num"][i]))
        if this != key:
            close()
            lines, key, line_key = [], this, None
        if data["line_num"][i] != line_key:
            lines.append([])
            line_key = data["line_num"][i]
        lines[-1].append(word)
        confidences.append(conf)
    close()
    confidence = round(sum(confidences) / len(confidences) / 100.0, 4) if confidences else None
    return OcrPage(paragraphs, confidence)
