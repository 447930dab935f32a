"""PDF text through pypdf, page by page, and OCR for the pages that have no usable text layer.

pypdf rather than unstructured's PDF path: it reads the text layer 3-17x faster (see FACTS.md), needs
no model downloads, and lets a page that fails be recorded and skipped instead of failing the document.
The decision to OCR is made per page (:func:`pipelines.extract.ocr.needs_ocr`): a scan with a born-digital
cover page keeps the cover's text and has its scanned pages read. Pages are rendered by pdfium
(pypdfium2), which also opens files pypdf only reads after repair.
"""

from __future__ import annotations

import io
import logging
import math
import re
from typing import Any

from pipelines.contracts.documents import Element, ElementKind, PageError, PageInfo, PageSource
from pipelines.errors import EncryptedDocument, ExtractionError, NoTextFound
from pipelines.extract.cleanup import CharBudget
from pipelines.extract.config import OcrConfig, OcrMode
from pipelines.extract.ocr import OcrDeferred, needs_ocr, text_layer_quality
from pipelines.extract.paged import PagedText, read_page_by_ocr
from pipelines.extract.pdf_tables import find_tables, page_elements, ruled_pages

__all__ = ["assemble_pdf", "extract_pdf", "minimal_pdf"]

_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t\r\f\v]*\n")
# A text layer with no letter or digit at all (only punctuation, as from glyphs without a Unicode
# mapping, or only whitespace) counts as no text.
_MIN_ALNUM = 1


def extract_pdf(data: bytes, *, doc_id: str, max_chars: int, ocr: OcrConfig | None = None) -> PagedText:
    """Extract each page's text layer, and OCR the pages that need it (``ocr.mode``).

    Raises:
        EncryptedDocument: a user password is needed (owner-password-only files are opened).
        NoTextFound: no page yielded text (an image-only PDF with OCR off, or blank pages).
        OcrDeferred: ``ocr.deferred`` is set and a page needs OCR (nothing else was done).
        ExtractionError: the file cannot be parsed, or every page failed.
        ExtractionLimitExceeded: the text exceeds ``max_chars``.
    """
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    # pypdf reports every repair it makes on a damaged file as a WARNING; they are not our errors.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    repaired_from: str | None = None
    try:
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
        except PdfReadError as e:
            if "startxref" not in str(e):
                raise
            # No trailer pointer (a file cut short, or written by hand): pointing startxref at offset 0
            # makes pypdf rebuild the cross-reference table by scanning for objects, as poppler and qpdf do.
            repaired_from = _describe(e)
            try:
                reader = PdfReader(io.BytesIO(data + b"\nstartxref\n0\n%%EOF\n"), strict=False)
            except Exception:
                raise e from None  # report what is wrong with the file, not with our repair
        if reader.is_encrypted:
            _decrypt(reader, doc_id)
        pages = reader.pages
        page_count = len(pages)
    except MemoryError:
        raise
    except (EncryptedDocument, ExtractionError):
        raise
    except FileNotDecryptedError as e:
        raise EncryptedDocument(f"the PDF is password-protected ({e})", doc_id=doc_id) from e
    except Exception as e:  # PdfReadError and the many plain exceptions pypdf lets escape on damaged files
        raise ExtractionError(f"not a readable PDF: {_describe(e)}", doc_id=doc_id) from e
    if page_count == 0:
        raise ExtractionError("the PDF has no pages", doc_id=doc_id)

    ocr = ocr or OcrConfig()
    # Every page's text layer first: whether any page needs OCR is known before anything costly is done.
    layers = [_text_layer(pages, i, data) if ocr.mode is not OcrMode.force else (None, None) for i in range(page_count)]
    if ocr.deferred and ocr.mode is not OcrMode.off and any(t is None or needs_ocr(t) for t, _ in layers):
        raise OcrDeferred("a page of the PDF needs OCR", doc_id=doc_id)
    budget = CharBudget(max_chars, doc_id=doc_id)
    out = PagedText(elements=[], page_count=page_count)
    renderer = _Renderer(data, ocr, doc_id)
    tables = _tables(data, renderer, page_count) if ocr.mode is not OcrMode.force else {}
    for number, (text, error) in enumerate(layers, 1):
        if ocr.mode is not OcrMode.off and (text is None or needs_ocr(text)):
            image = renderer.render(number, out)
            if image is not None:
                # A sparse but real text layer is kept if OCR reads even less; a garbage one never is.
                sparse = text if text is not None and text_layer_quality(text) == "sparse" else None
                chars = read_page_by_ocr(
                    image, ocr, page=number, budget=budget, out=out, doc_id=doc_id, text_layer=sparse
                )
                if chars == 0 and error is not None:
                    # Nothing to see on the rendered page either: the text layer's failure is the story.
                    out.page_errors.append(PageError(page=number, error=error))
                if chars is not None or text is None:
                    continue
                # OCR read less than the sparse text layer has: a short born-digital page; keep its text.
            elif text is None:
                continue  # the render error is the page's error
        if text is None:
            out.page_errors.append(PageError(page=number, error=error or "unreadable page"))
            continue
        chars = 0
        if number in tables:
            found = page_elements(text, tables[number], page=number)
        else:
            found = [Element(text=p, kind=ElementKind.text, page=number) for p in _PARAGRAPH_BREAK_RE.split(text)]
        for element in found:
            kept = budget.take(element.text)
            if kept:
                chars += len(kept)
                out.elements.append(element.model_copy(update={"text": kept}) if kept != element.text else element)
        out.pages.append(PageInfo(page=number, source=PageSource.text_layer, chars=chars))

    errors = out.page_errors
    if len(errors) == page_count:
        raise ExtractionError(
            f"text could not be read from any of the {page_count} page(s): {errors[0].error}", doc_id=doc_id
        )
    if sum(ch.isalnum() for e in out.elements for ch in e.text) < _MIN_ALNUM:
        if repaired_from is not None:
            raise ExtractionError(f"not a readable PDF: {repaired_from}; no text after repair", doc_id=doc_id)
        if errors:
            raise ExtractionError(
                f"no text found; {len(errors)} of {page_count} page(s) failed: {errors[0].error}", doc_id=doc_id
            )
        if ocr.mode is OcrMode.off:
            raise NoTextFound("the PDF has no text layer and OCR is off (DOCLAKE_OCR=off)", doc_id=doc_id)
        raise NoTextFound(
            f"no text found: OCR ({ocr.tesseract_lang}) read no text on any of the {page_count} page(s); "
            "for another script, install its Tesseract pack (tesseract-ocr-<lang>: detected per page while "
            "DOCLAKE_OCR_SCRIPT_DETECT is on, or add it to DOCLAKE_OCR_LANGUAGES)",
            doc_id=doc_id,
        )
    return out


def _text_layer(pages: Any, index: int, data: bytes) -> tuple[str | None, str | None]:
    """A page's text layer, or None and why pypdf could not read it (the page object itself, or its text)."""
    try:
        page = pages[index]
        if _cjk_cids_without_unicode(page):
            return _pdfminer_text(data, index), None
        return page.extract_text() or "", None
    except MemoryError:
        raise
    except Exception as e:  # any parser failure on one page: record it, keep the other pages
        return None, _describe(e)


# Adobe's CJK character collections: a CID font of one of them with no /ToUnicode map is decoded through
# Adobe's CMaps (CID → Unicode), which pdfminer ships and pypdf does not.
_CJK_ORDERINGS = frozenset({"Japan1", "GB1", "CNS1", "Korea1"})


def _cjk_cids_without_unicode(page: Any) -> bool:
    """True when the page draws with a CJK CID font that has no /ToUnicode map and no Unicode CMap.

    pypdf reads such text as if the CIDs (or the EUC/Shift-JIS bytes) were UTF-16 and returns letters of
    random scripts ("ɹɹং Θͨ͘͠…" for Japanese) that pass every garbage test; pdfminer maps them right.
    """
    try:
        fonts = page["/Resources"]["/Font"].get_object()
        for ref in fonts.values():
            font = ref.get_object()
            if font.get("/Subtype") != "/Type0" or "/ToUnicode" in font:
                continue
            encoding = font.get("/Encoding")
            if isinstance(encoding, str) and encoding.startswith("/Uni"):
                continue  # UniJIS-UCS2-H and the like: the bytes are Unicode already
            info = font["/DescendantFonts"].get_object()[0].get_object()["/CIDSystemInfo"].get_object()
            if str(info.get("/Ordering")) in _CJK_ORDERINGS:
                return True
    except Exception:  # a font dictionary we cannot walk: pypdf's reading stands
        return False
    return False


def _pdfminer_text(data: bytes, index: int) -> str:
    """One page's text through pdfminer.six (installed with pdfplumber), vertical lines kept as lines."""
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    text = extract_text(io.BytesIO(data), page_numbers=[index], laparams=LAParams(detect_vertical=True))
    return text.replace("\x0c", "").replace("\u3000", " ")


def _tables(data: bytes, renderer: _Renderer, page_count: int) -> dict[int, list[str]]:
    """Ruled tables of the pages that draw rules (pdfplumber only lays those out), by page number."""
    pdf = renderer.document()
    if pdf is None:
        return {}
    candidates = ruled_pages(pdf, page_count)
    return find_tables(data, pages=set(candidates)) if candidates else {}


class _Renderer:
    """Pages as images for OCR, through pdfium; opened on the first page that needs it."""

    def __init__(self, data: bytes, config: OcrConfig, doc_id: str) -> None:
        self.data = data
        self.config = config
        self.doc_id = doc_id
        self._pdf: Any = None
        self._open_error: str | None = None

    def document(self) -> Any:
        """The pdfium document, or None when pdfium cannot open the file (the reason is kept)."""
        import pypdfium2 as pdfium

        if self._pdf is None and self._open_error is None:
            try:
                # An empty password opens owner-password-only files, as pypdf's decrypt("") does.
                self._pdf = pdfium.PdfDocument(self.data, password="")
            except pdfium.PdfiumError as e:
                self._open_error = f"the page could not be rendered for OCR: {_describe(e)}"
        return self._pdf

    def render(self, number: int, out: PagedText) -> Any:
        """The page as a grayscale Pillow image, or None with the failure recorded for the page."""
        if self.document() is None:
            out.page_errors.append(PageError(page=number, error=self._open_error or "not rendered"))
            return None
        try:
            page = self._pdf[number - 1]
            width, height = page.get_size()  # points (1/72 inch)
            scale = self.config.dpi / 72
            if width * height * scale * scale > self.config.max_pixels:
                # A page of a poster's size would be a decompression bomb at full DPI: read it coarser.
                scale = math.sqrt(self.config.max_pixels / max(1.0, width * height))
            return page.render(scale=scale, grayscale=True).to_pil()
        except MemoryError:
            raise
        except Exception as e:
            out.page_errors.append(
                PageError(page=number, error=f"the page could not be rendered for OCR: {_describe(e)}")
            )
            return None


def _decrypt(reader: object, doc_id: str) -> None:
    """Open files that need no user password (only an owner password restricting copy/print)."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    assert isinstance(reader, PdfReader)
    try:
        result = reader.decrypt("")
    except DependencyError as e:  # AES without the cryptography package: an installation fault
        raise ExtractionError(f"cannot decrypt the PDF: {e}", doc_id=doc_id) from e
    except NotImplementedError as e:  # an encryption handler pypdf does not implement
        raise EncryptedDocument(f"the PDF uses unsupported encryption ({e})", doc_id=doc_id) from e
    if result == PasswordType.NOT_DECRYPTED:
        raise EncryptedDocument("the PDF is password-protected; a user password is required", doc_id=doc_id)


def _describe(e: BaseException) -> str:
    message = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return f"{type(e).__name__}: {message}" if message else type(e).__name__


def minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (ASCII) in Helvetica, for warming up the PDF code path."""
    content = b"BT /F1 12 Tf 10 50 Td (" + text.encode("ascii", "replace") + b") Tj ET"
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return assemble_pdf(bodies)


def assemble_pdf(bodies: list[bytes]) -> bytes:
    """A PDF file of numbered objects (object 1 the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return bytes(out)
