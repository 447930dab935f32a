"""DOCX, PPTX, XLSX/XLS, HTML, Markdown, EML, MSG, TXT and CSV through unstructured's format-specific partitioners.

Each partitioner is called directly (never ``partition()``, whose own type detection and PDF/image
strategies would bypass ours) from bytes or from text we decoded, and its elements are mapped onto our
:class:`~pipelines.contracts.Element`.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.contracts.documents import DocFormat, Element, ElementKind
from pipelines.errors import DocLakeError, EncryptedDocument, ExtractionError
from pipelines.extract import offline_nlp
from pipelines.extract.cleanup import CharBudget, clean_text
from pipelines.extract.detect import TSV_MIME

__all__ = ["CATEGORY_KINDS", "SKIPPED_CATEGORIES", "import_partitioners", "map_elements", "partition"]

CATEGORY_KINDS: dict[str, ElementKind] = {
    "Title": ElementKind.title,
    "ListItem": ElementKind.list_item,
    "Table": ElementKind.table,
    "TableChunk": ElementKind.table,
    # Running heads and feet: kept (they can carry the only copy of a title or a date) but marked, so the
    # chunker can treat them apart from body text.
    "Header": ElementKind.other,
    "Footer": ElementKind.other,
}
"""unstructured categories with a kind of their own; every other category with text is ``text``."""

SKIPPED_CATEGORIES = frozenset({"PageBreak", "Image", "PageNumber", "CheckBox"})
"""Categories that carry no document text (an Image's text is alt text or OCR, which we do not run)."""

# Options shared by every partitioner: no language detection (we do not use it, and on a multi-language
# document unstructured re-detects per element, which costs seconds on a long file).
_COMMON: dict[str, Any] = {"languages": [""]}


def import_partitioners() -> None:
    """Import unstructured's partitioners (seconds: spaCy pulls in torch) and make them offline-safe."""
    offline_nlp.install()
    from unstructured.partition import csv, docx, email, md, msg, pptx, text, tsv, xlsx  # noqa: F401
    from unstructured.partition.html import partition  # noqa: F401


def partition(
    data: bytes, fmt: DocFormat, mime: str, text: str | None, *, doc_id: str, max_chars: int
) -> list[Element]:
    """Partition one document with unstructured and map its elements; raises ExtractionError subclasses."""
    import_partitioners()
    call = _partitioner_call(data, fmt, mime, text)
    try:
        raw = call()
    except MemoryError:
        raise  # the sandbox turns it into ExtractionLimitExceeded
    except DocLakeError:
        raise
    except Exception as e:
        raise _readable_error(e, fmt, doc_id) from e
    return map_elements(raw, fmt, doc_id=doc_id, max_chars=max_chars)


def map_elements(raw: Iterable[Any], fmt: DocFormat, *, doc_id: str, max_chars: int) -> list[Element]:
    """unstructured elements of a ``fmt`` document as ours; raises ExtractionLimitExceeded past ``max_chars``."""
    return list(_map_elements(raw, fmt, CharBudget(max_chars, doc_id=doc_id)))


def _partitioner_call(data: bytes, fmt: DocFormat, mime: str, text: str | None) -> Callable[[], list[Any]]:
    if fmt is DocFormat.docx:
        from unstructured.partition.docx import partition_docx

        return lambda: partition_docx(file=io.BytesIO(data), include_page_breaks=False, **_COMMON)
    if fmt is DocFormat.pptx:
        from unstructured.partition.pptx import partition_pptx

        return lambda: partition_pptx(
            file=io.BytesIO(data), include_page_breaks=False, include_slide_notes=True, **_COMMON
        )
    if fmt in (DocFormat.xlsx, DocFormat.xls):
        # pandas picks the engine from the bytes: openpyxl for XLSX, xlrd for legacy BIFF .xls.
        from unstructured.partition.xlsx import partition_xlsx

        return lambda: partition_xlsx(file=io.BytesIO(data), **_COMMON)
    if fmt is DocFormat.eml:
        from unstructured.partition.email import partition_email

        return lambda: _partition_email(partition_email, data, text)
    if fmt is DocFormat.msg:
        from unstructured.partition.msg import partition_msg

        return lambda: _partition_msg(partition_msg, data)
    assert text is not None, f"{fmt} is a text format; detect() decodes it"
    if fmt is DocFormat.html:
        from unstructured.partition.html import partition_html

        return lambda: partition_html(text=text, **_COMMON)
    if fmt is DocFormat.markdown:
        from unstructured.partition.md import partition_md

        return lambda: partition_md(text=text, **_COMMON)
    if fmt is DocFormat.csv:
        # We already decoded the bytes (UTF-16, legacy code pages); hand the partitioner UTF-8.
        utf8 = io.BytesIO(text.encode("utf-8"))
        if mime == TSV_MIME:
            from unstructured.partition.tsv import partition_tsv

            return lambda: partition_tsv(file=utf8, **_COMMON)
        from unstructured.partition.csv import partition_csv

        return lambda: partition_csv(file=utf8, encoding="utf-8", **_COMMON)
    from unstructured.partition.text import partition_text

    return lambda: partition_text(text=text, **_COMMON)


def _partition_email(partition_email: Callable[..., list[Any]], data: bytes, text: str | None) -> list[Any]:
    # The email parser reads bytes and decodes each part by its declared charset; only a file that is
    # UTF-16/32 as a whole (not ASCII-compatible) must be re-encoded first.
    if text is not None and not _ascii_compatible(data):
        data = text.encode("utf-8")
    # Attachments are not partitioned: unstructured would route them through its own auto-detection,
    # which sends PDFs and images to strategies (hi_res, OCR) that are not installed and bypasses our
    # limits. The message body is the document.
    elements = partition_email(file=io.BytesIO(data), process_attachments=False, **_COMMON)
    subject = _email_subject(elements, data)
    if subject:
        # unstructured keeps the Subject only in metadata; it is the message's title, and often the
        # only text that says what a short message is about.
        from unstructured.documents.elements import Title

        return [Title(text=subject), *elements]
    return elements


def _partition_msg(partition_msg: Callable[..., list[Any]], data: bytes) -> list[Any]:
    # An Outlook message (python-oxmsg under unstructured): the body only, as for RFC 822 messages; the
    # attachments are read by pipelines.extract.attachments.
    elements = partition_msg(file=io.BytesIO(data), process_attachments=False, **_COMMON)
    subject = next((str(s).strip() for e in elements if (s := getattr(e.metadata, "subject", None))), "")
    if not subject:
        from oxmsg import Message

        try:
            subject = Message.load(data).subject.strip()
        except Exception:  # an unreadable property is no reason to fail the body
            subject = ""
    if subject:
        from unstructured.documents.elements import Title

        return [Title(text=subject), *elements]
    return elements


def _ascii_compatible(data: bytes) -> bool:
    return b"\x00" not in data[:4096]


def _email_subject(elements: list[Any], data: bytes) -> str | None:
    for e in elements:
        subject = getattr(e.metadata, "subject", None)
        if subject:
            return str(subject).strip() or None
    import email
    import email.policy

    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        subject = msg.get("Subject")
    except Exception:  # a header the parser cannot decode is no reason to fail the body
        return None
    return str(subject).strip() or None if subject else None


def _map_elements(raw: Iterable[Any], fmt: DocFormat, budget: CharBudget) -> Iterable[Element]:
    sheet: str | None = None
    for e in raw:
        category = str(getattr(e, "category", "") or "")
        if category in SKIPPED_CATEGORIES:
            continue
        kind = CATEGORY_KINDS.get(category, ElementKind.text)
        meta = getattr(e, "metadata", None)
        text = str(getattr(e, "text", "") or "")
        if kind is ElementKind.table:
            text = _table_text(getattr(meta, "text_as_html", None)) or text
        text = budget.take(text)
        if not text:
            continue
        page = getattr(meta, "page_number", None)
        page = page if isinstance(page, int) else None
        depth = getattr(meta, "category_depth", None)
        depth = depth if isinstance(depth, int) and depth >= 0 else 0
        if kind is ElementKind.title and _is_heuristic_title(fmt, meta, depth) and _SENTENCE_END_RE.search(text):
            kind = ElementKind.text
        level = depth if kind is ElementKind.title else 0
        if fmt in (DocFormat.xlsx, DocFormat.xls):
            # Each sheet is a section headed by its name (level 0), so the heading path of every chunk
            # says which sheet it came from; titles found inside the sheet nest under it.
            name = getattr(meta, "page_name", None)
            if isinstance(name, str) and name.strip() and name != sheet:
                sheet = name
                if kind is ElementKind.title and text == clean_text(name):
                    yield Element(text=text, kind=kind, page=page, level=0)  # the sheet already starts with it
                    continue
                title = budget.take(name)
                if title:
                    yield Element(text=title, kind=ElementKind.title, page=page, level=0)
            if sheet is not None and kind is ElementKind.title:
                level += 1
        yield Element(text=text, kind=kind, page=page, level=level)


# Sentence-final punctuation, optionally followed by closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?\u2026][\"'\u201d\u2019\u00bb)\]]*$")


def _is_heuristic_title(fmt: DocFormat, meta: Any, depth: int) -> bool:
    """True when unstructured called the text a title only from its wording, not from document structure.

    Where a partitioner has no structure to go on (plain text, email text bodies, spreadsheet cells, PPTX
    text boxes other than the title placeholder) it calls a short line a Title unless it looks like
    narrative, and "narrative" needs a verb from the POS tagger, which the offline pipeline does not have
    (see :mod:`pipelines.extract.offline_nlp`). A line that ends like a sentence ("Prince Vasili rose.") is
    not a heading, so such titles are mapped to ``text``. Structural titles (Word heading styles, HTML and
    Markdown headings, the PPTX title placeholder) are kept whatever their punctuation.
    """
    if fmt in (DocFormat.text, DocFormat.xlsx, DocFormat.xls):
        return True
    if fmt is DocFormat.eml:
        return getattr(meta, "detection_origin", None) == "text"  # a text/plain body, not HTML
    if fmt is DocFormat.msg:
        # Body elements (plain text or Outlook's HTML, which marks no headings); not the subject we prepend.
        return getattr(meta, "detection_origin", None) == "msg"
    if fmt is DocFormat.pptx:
        return depth >= 1  # depth 0 is the slide's title placeholder
    return False


_WS_RE = re.compile(r"\s+")


def _table_text(html: str | None) -> str | None:
    """A table as plain text, one row per line and cells separated by `` | ``.

    unstructured's own ``Table.text`` runs all cells together with single spaces, which loses where one
    cell ends and the next begins; its ``text_as_html`` keeps the grid.
    """
    if not html:
        return None
    try:
        from lxml import html as lxml_html

        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except Exception:
        return None
    lines = []
    for row in root.iter("tr"):
        cells = [_WS_RE.sub(" ", cell.text_content()).strip() for cell in row if cell.tag in ("td", "th")]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines) or None


def _readable_error(e: Exception, fmt: DocFormat, doc_id: str) -> ExtractionError:
    """One line saying what is wrong with the file, instead of the parser's exception type."""
    name = fmt.value.upper()
    if isinstance(e, zipfile.BadZipFile) or "zip" in type(e).__module__:
        return ExtractionError(f"damaged {name} file: not a readable zip package ({e})", doc_id=doc_id)
    if type(e).__name__ == "PackageNotFoundError" or isinstance(e, KeyError):
        return ExtractionError(f"damaged {name} file: a required part is missing ({e})", doc_id=doc_id)
    if "encrypt" in str(e).lower() or "password" in str(e).lower():
        return EncryptedDocument(f"the {name} file is password-protected ({e})", doc_id=doc_id)
    message = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return ExtractionError(f"could not parse the {name} file: {type(e).__name__}: {message}", doc_id=doc_id)
