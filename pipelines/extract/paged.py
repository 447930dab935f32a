"""What paged formats (PDFs, images) yield, and the reading of one page by OCR.

Shared by the PDF and image extractors so that a page read by OCR looks the same whichever file it
came from: its paragraphs as elements marked ``ocr``, a :class:`PageInfo` with its confidence, and a
failure recorded for that page alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.contracts.documents import Element, ElementKind, PageError, PageInfo, PageSource
from pipelines.extract.cleanup import CharBudget
from pipelines.extract.config import OcrConfig
from pipelines.extract.ocr import OcrPageFailed, ocr_image
from pipelines.extract.sandbox import heartbeat

__all__ = ["PagedText", "read_page_by_ocr"]


@dataclass
class PagedText:
    """Elements in page order, the page count, the pages that failed and how each page was read."""

    elements: list[Element]
    page_count: int
    page_errors: list[PageError] = field(default_factory=list)
    pages: list[PageInfo] = field(default_factory=list)


def read_page_by_ocr(
    image: Any,
    config: OcrConfig,
    *,
    page: int,
    budget: CharBudget,
    out: PagedText,
    doc_id: str,
    text_layer: str | None = None,
) -> int | None:
    """OCR one page image into ``out``: its paragraphs as elements and its :class:`PageInfo`, or its error.

    ``text_layer`` is the page's own (sparse) text: when OCR reads no more letters and digits than it has,
    the page keeps it instead (a born-digital page that is short, not a scan), and None is returned.

    Returns the characters read, or None when the page's OCR failed (its error is in ``out.page_errors``)
    or its text layer was kept.
    """
    try:
        result = ocr_image(image, config, page=page, doc_id=doc_id)
    except OcrPageFailed as e:
        if text_layer is None or not _alnum(text_layer):
            out.page_errors.append(PageError(page=page, error=e.message))
        return None
    finally:
        heartbeat()  # the sandbox's time bound restarts with each page, done or failed
    if text_layer is not None and sum(map(_alnum, result.paragraphs)) <= _alnum(text_layer):
        return None
    chars = 0
    for paragraph in result.paragraphs:
        text = budget.take(paragraph)
        if text:
            chars += len(text)
            out.elements.append(Element(text=text, kind=ElementKind.text, page=page, ocr=True))
    out.pages.append(
        PageInfo(
            page=page,
            source=PageSource.ocr,
            chars=chars,
            ocr_confidence=result.confidence,
            ocr_languages=result.languages or None,
        )
    )
    return chars


def _alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)
