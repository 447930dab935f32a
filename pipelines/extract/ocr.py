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

The language of a page: Tesseract reads only the scripts of the packs it is given, and giving it every
installed pack on every page multiplies the time by their number. So a page is read with the configured
packs, and only when that reading is unsure is its script detected (Tesseract's own OSD, ~0.2-1.4 s a
page at 300 DPI) and the page read again with an installed pack for that script in front of the
configured ones (:func:`page_languages`); the surer of the two readings is kept. A page with too few
characters for OSD is read again with every installed script pack (a near-empty page is cheap to read).
"""

from __future__ import annotations

import functools
import os
import shutil
import time
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
    "installed_languages",
    "needs_ocr",
    "ocr_image",
    "page_languages",
    "text_layer_quality",
]

# Fewer letters than this on a page means "no text layer": a scan often carries a stamp, a page number
# or a few glyphs of a running head as text while its content is only an image.
_MIN_LETTERS = 20
# Below this share of letters among visible characters, a text layer is garbage (glyphs without a Unicode
# mapping come out as symbols, private-use code points or U+FFFD).
_MIN_LETTER_SHARE = 0.5

# Tesseract OSD's script names → the Debian packs (tesseract-ocr-<pack>) that read them, best first; the first
# installed one is used. Latin is absent: the configured languages read it. A CJK pack's vertical variant
# (`jpn_vert`), when installed, is added beside it: Japanese and Chinese are often set in columns.
_SCRIPT_PACKS: dict[str, tuple[str, ...]] = {
    "Han": ("chi_sim", "chi_tra", "jpn"),
    "Japanese": ("jpn",),
    "Korean": ("kor",),
    "Hangul": ("kor",),
    "Cyrillic": ("rus", "ukr", "bul", "srp"),
    "Greek": ("ell",),
    "Arabic": ("ara", "fas", "urd"),
    "Hebrew": ("heb",),
    "Devanagari": ("hin", "mar", "nep"),
    "Thai": ("tha",),
    "Bengali": ("ben",),
    "Tamil": ("tam",),
    "Telugu": ("tel",),
    "Kannada": ("kan",),
    "Malayalam": ("mal",),
    "Gujarati": ("guj",),
    "Gurmukhi": ("pan",),
    "Armenian": ("hye",),
    "Georgian": ("kat",),
    "Ethiopic": ("amh",),
    "Khmer": ("khm",),
    "Lao": ("lao",),
    "Myanmar": ("mya",),
    "Sinhala": ("sin",),
    "Tibetan": ("bod",),
}
_VERTICAL = frozenset({"chi_sim", "chi_tra", "jpn", "kor"})
# A page whose reading with the configured packs has a mean word confidence below this has its script
# detected: clean Latin text reads at 0.85-0.95, a Latin guess at another script at 0.25-0.55.
_RETRY_BELOW_CONFIDENCE = 0.7


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
    languages: str = ""
    """The Tesseract ``lang`` the page was read with (``jpn+eng``)."""


@functools.cache
def installed_languages() -> frozenset[str]:
    """The language packs Tesseract has, asked once per process (empty when it does not run)."""
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except Exception:  # check_ocr reports a broken installation at start; here it only means "none"
        return frozenset()


def _script_pack(script: str, installed: frozenset[str]) -> list[str]:
    """The installed packs that read ``script`` (its first choice and that one's vertical variant), or []."""
    for pack in _SCRIPT_PACKS.get(script, ()):
        if pack in installed:
            vertical = f"{pack}_vert"
            return [pack, vertical] if pack in _VERTICAL and vertical in installed else [pack]
    return []


def _extra_packs(config: OcrConfig, installed: frozenset[str]) -> list[str]:
    """Installed script packs detection may add (not configured), in the order of ``_SCRIPT_PACKS``."""
    extra: list[str] = []
    for script in _SCRIPT_PACKS:
        for pack in _script_pack(script, installed):
            if pack not in config.languages and pack not in extra:
                extra.append(pack)
    return extra


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


def page_languages(image: Any, config: OcrConfig, *, timeout_s: float | None = None) -> str | None:
    """The Tesseract ``lang`` to read one page image with: its detected script's pack, then ``config.languages``.

    ``config.tesseract_lang`` when detection is off, finds Latin (or a script whose pack is configured or
    not installed) or no pack could be added; None when OSD could not tell (too few characters on the page).

    Raises:
        RuntimeError: OSD ran past ``timeout_s`` (pytesseract's timeout).
    """
    import pytesseract

    installed = installed_languages()
    if not config.script_detect or "osd" not in installed or not _extra_packs(config, installed):
        return config.tesseract_lang  # nothing detection could add: spare the page its OSD pass
    try:
        osd = pytesseract.image_to_osd(
            image, config="--psm 0", output_type=pytesseract.Output.DICT, timeout=timeout_s or 0
        )
    except pytesseract.TesseractError:
        # "Too few characters. Skipping this page": a page with a word or two, or none.
        return None
    packs = [p for p in _script_pack(str(osd.get("script", "")), installed) if p not in config.languages]
    return "+".join([*packs, *config.languages])


def ocr_image(image: Any, config: OcrConfig, *, page: int, doc_id: str | None = None) -> OcrPage:
    """Recognise the text of one page image (a Pillow image), paragraph by paragraph.

    The page is read with ``config.languages``; when that reading is unsure (mean word confidence under
    0.7) and ``config.script_detect`` is on, the page's script is detected (:func:`page_languages`) and
    the page read again with its pack in front; the surer reading is kept. Every step together is bounded
    by ``config.page_timeout_s``.

    Raises:
        OcrPageFailed: Tesseract failed or ran past ``config.page_timeout_s``.
    """
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    if image.mode not in ("RGB", "L", "1"):
        image = image.convert("RGB")
    deadline = time.monotonic() + config.page_timeout_s

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError("timeout")
        return remaining

    try:
        result = _recognise(image, config.tesseract_lang, timeout_s=left())
        # Detection only for an unsure reading: the configured packs read their own script at 0.85-0.95 and
        # a page in another script at 0.25-0.55 (measured on the corpus's CJK pages with `eng`), so a page
        # in the configured languages never pays for OSD (25-40 % of a page's OCR time). A blank page (no
        # word at all) is not retried either.
        if config.script_detect and result.paragraphs and (result.confidence or 0.0) < _RETRY_BELOW_CONFIDENCE:
            lang = page_languages(image, config, timeout_s=left())
            if lang is None:
                # Too few characters for OSD (a short line, "あいうえお", read by `eng` as "DI\\DAS" at
                # 0.54): every installed script pack reads it; the page is nearly empty, so this is cheap.
                extra = _extra_packs(config, installed_languages())
                lang = "+".join([*extra, *config.languages]) if extra else config.tesseract_lang
            if lang != config.tesseract_lang:
                again = _recognise(image, lang, timeout_s=left())
                if (again.confidence or 0.0) > (result.confidence or 0.0):
                    result = again
    except RuntimeError as e:  # pytesseract's timeout, or ours between its calls
        raise OcrPageFailed(
            f"OCR of page {page} took longer than {config.page_timeout_s:g} s and was stopped", doc_id=doc_id
        ) from e
    except pytesseract.TesseractError as e:
        raise OcrPageFailed(f"OCR of page {page} failed: {e.message or e.status}", doc_id=doc_id) from e
    return result


def _recognise(image: Any, lang: str, *, timeout_s: float) -> OcrPage:
    import pytesseract

    data = pytesseract.image_to_data(
        image,
        lang=lang,
        # Page segmentation with orientation and script detection: a page scanned sideways or upside
        # down is read in its own orientation (needs the osd pack; without it Tesseract falls back).
        config="--psm 1",
        output_type=pytesseract.Output.DICT,
        timeout=timeout_s,
    )
    return _paragraphs(data, lang)


def _join(words: list[str]) -> str:
    """A line's words, spaced except between two Han or kana characters: Chinese and Japanese put no space
    between words, and Tesseract's word boxes would otherwise split "有機交流電灯" into "有機 交流 電灯"."""
    out = words[0]
    for word in words[1:]:
        out += word if _unspaced(out[-1]) and _unspaced(word[0]) else " " + word
    return out


def _unspaced(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x3400 <= code <= 0x9FFF  # CJK unified ideographs (and extension A)
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFF60  # full-width forms
        or 0x20000 <= code <= 0x2FA1F  # supplementary ideographs
    )


def _paragraphs(data: dict[str, list[Any]], lang: str) -> OcrPage:
    """Group Tesseract's words into paragraphs (lines joined by newlines) and average their confidence."""
    paragraphs: list[str] = []
    lines: list[list[str]] = []
    key: tuple[int, int] | None = None
    line_key: int | None = None
    confidences: list[float] = []

    def close() -> None:
        text = "\n".join(_join(words) for words in lines if words)
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
    return OcrPage(paragraphs, confidence, lang)
