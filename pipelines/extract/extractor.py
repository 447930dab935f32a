"""Bytes in, :class:`~pipelines.contracts.ExtractedDocument` out: in-process or in a bounded child."""

from __future__ import annotations

import functools

from pipelines.contracts.documents import AttachmentError, DocFormat, Element, ExtractedDocument
from pipelines.errors import DocLakeError, ExtractionError, ExtractionLimitExceeded, NoTextFound
from pipelines.extract.cleanup import CharBudget
from pipelines.extract.config import ExtractConfig, OcrMode
from pipelines.extract.detect import detect

__all__ = ["extract_bytes", "extract_unbounded", "warm_up"]

# Formats whose extracted text is about as long as the decoded input: checked against max_chars before
# partitioning, so an oversized file is refused in milliseconds rather than after minutes of parsing.
_PLAIN_FORMATS = frozenset({DocFormat.text, DocFormat.markdown, DocFormat.csv})
# Formats pandoc converts to HTML first (pipelines/extract/pandoc.py).
_PANDOC_FORMATS = frozenset({DocFormat.rtf, DocFormat.odt, DocFormat.epub})


def warm_up() -> None:
    """Import the parsers and install the offline spaCy pipeline, once, in the calling process.

    Run in the extraction server (:func:`pipelines.extract.sandbox.start_server`): every child forked from
    it then shares the imported modules instead of spending seconds importing unstructured and spaCy; also
    useful before :func:`extract_unbounded` in-process.
    """
    import charset_normalizer  # noqa: F401
    import cryptography.hazmat.primitives.ciphers  # noqa: F401  (pypdf's AES decryption)
    import olefile  # noqa: F401
    import PIL.Image  # noqa: F401
    import pypdf  # noqa: F401
    import pypdfium2  # noqa: F401
    import pytesseract  # noqa: F401

    from pipelines.extract import office
    from pipelines.extract.ocr import installed_languages
    from pipelines.extract.pdf import minimal_pdf

    office.import_partitioners()
    installed_languages()  # asked once here; forked children inherit the answer
    # The first call of each path imports submodules lazily and builds caches (tokenizer tables, font
    # metrics, regexes): pay that here once rather than in every forked child.
    extract_unbounded(minimal_pdf("Warm-up text."), doc_id="warm-up")
    extract_unbounded(b"Warm-up text. It has two sentences.", doc_id="warm-up", filename="warm-up.txt")
    extract_unbounded(b"<html><body><h1>Warm-up</h1><p>Text.</p></body></html>", doc_id="warm-up")
    extract_unbounded(b"# Warm-up\n\nText.\n", doc_id="warm-up", filename="warm-up.md")


def extract_unbounded(
    data: bytes,
    *,
    doc_id: str,
    filename: str | None = None,
    config: ExtractConfig | None = None,
    depth: int = 0,
) -> ExtractedDocument:
    """Extract a document's text in this process, with no time or memory bound.

    Use :func:`extract_bytes` for untrusted input; this is what it runs in its child.

    Args:
        data: the file's bytes.
        doc_id: the document id, carried on every error.
        filename: the original name; only a hint between Markdown/CSV/TSV and plain text.
        config: bounds; ``max_chars`` and ``attachments`` apply here.
        depth: how many levels of attachments below an uploaded document this one is (0: uploaded); a
            container's attachments are returned only while they stay within ``config.attachments``.

    Raises:
        UnsupportedFormat, EncryptedDocument, NoTextFound, ExtractionLimitExceeded, ExtractionError.
    """
    config = config or ExtractConfig()
    try:
        return _extract(data, doc_id=doc_id, filename=filename, config=config, depth=depth)
    except DocLakeError:
        raise
    except MemoryError as e:
        raise ExtractionLimitExceeded("extraction ran out of memory", doc_id=doc_id) from e
    except Exception as e:  # a parser failure no extractor anticipated: still one readable line
        raise ExtractionError(f"{type(e).__name__}: {e}", doc_id=doc_id) from e


def extract_bytes(
    data: bytes,
    *,
    doc_id: str,
    filename: str | None = None,
    config: ExtractConfig | None = None,
    depth: int = 0,
) -> ExtractedDocument:
    """Extract a document's text in a child process bounded by ``config.timeout_s`` and ``config.memory_mb``.

    Same arguments and result as :func:`extract_unbounded`.

    Raises:
        ExtractionLimitExceeded: the child overran its time or memory bound (it is killed), or died by a
            signal.
        UnsupportedFormat, EncryptedDocument, NoTextFound, ExtractionError: as :func:`extract_unbounded`.
    """
    from pipelines.extract.sandbox import run_bounded

    config = config or ExtractConfig()
    # Attachments come back through the pipe (pickled), bounded by config.attachments in the child.
    work = functools.partial(extract_unbounded, doc_id=doc_id, filename=filename, config=config, depth=depth)
    # Each OCR'd page restarts the time bound (up to the page's own bound): a long scan is not refused
    # for its length, and a hung parser is still stopped.
    beat_s = config.ocr.page_timeout_s + 5.0 if config.ocr.mode is not OcrMode.off else 0.0
    return run_bounded(work, data, timeout_s=config.timeout_s, memory_mb=config.memory_mb, doc_id=doc_id, beat_s=beat_s)


def _extract(data: bytes, *, doc_id: str, filename: str | None, config: ExtractConfig, depth: int) -> ExtractedDocument:
    found = detect(data, filename=filename, doc_id=doc_id)
    if found.format is DocFormat.zip:
        from pipelines.extract.attachments import archive_document

        return archive_document(
            data, doc_id=doc_id, filename=filename, depth=depth, config=config.attachments, max_chars=config.max_chars
        )
    if found.format in (DocFormat.pdf, DocFormat.image):
        from pipelines.extract.images import extract_image
        from pipelines.extract.pdf import extract_pdf

        read = extract_pdf if found.format is DocFormat.pdf else extract_image
        paged = read(data, doc_id=doc_id, max_chars=config.max_chars, ocr=config.ocr)
        return ExtractedDocument(
            format=found.format,
            mime=found.mime,
            elements=paged.elements,
            page_count=paged.page_count,
            page_errors=paged.page_errors,
            pages=paged.pages,
        )
    if found.format in _PLAIN_FORMATS and found.text is not None and len(found.text) > config.max_chars:
        raise ExtractionLimitExceeded(
            f"the document has more than {config.max_chars:,} characters of text", doc_id=doc_id
        )
    if found.format in (DocFormat.markdown, DocFormat.text) and found.text is not None:
        from pipelines.extract.markdown import markdown_elements
        from pipelines.extract.plaintext import text_elements

        parse = markdown_elements if found.format is DocFormat.markdown else text_elements
        elements = parse(found.text, doc_id=doc_id, max_chars=config.max_chars)
        if not elements:
            raise NoTextFound(f"no text found in the {found.format.value.upper()} file", doc_id=doc_id)
        return ExtractedDocument(format=found.format, mime=found.mime, elements=elements)
    from pipelines.extract.office import partition

    if found.format in _PANDOC_FORMATS:
        from pipelines.extract.pandoc import pandoc_html

        html = pandoc_html(data, found.format.value, doc_id=doc_id, timeout_s=config.timeout_s)  # type: ignore[arg-type]
        # The HTML keeps the headings, lists and tables, and the HTML partitioner maps them as for a web page.
        elements = partition(b"", DocFormat.html, "text/html", html, doc_id=doc_id, max_chars=config.max_chars)
    else:
        elements = partition(data, found.format, found.mime, found.text, doc_id=doc_id, max_chars=config.max_chars)
    if found.format in (DocFormat.eml, DocFormat.msg):
        return _message(data, found.format, found.mime, elements, doc_id=doc_id, config=config, depth=depth)
    if not elements:
        raise NoTextFound(f"no text found in the {found.format.value.upper()} file", doc_id=doc_id)
    return ExtractedDocument(format=found.format, mime=found.mime, elements=elements)


def _message(
    data: bytes,
    fmt: DocFormat,
    mime: str,
    elements: list[Element],
    *,
    doc_id: str,
    config: ExtractConfig,
    depth: int,
) -> ExtractedDocument:
    """An e-mail: its body's elements, and its attachments (within the bounds) beside them."""
    from pipelines.extract.attachments import Attachments, email_attachments, listing, msg_attachments

    read = email_attachments if fmt is DocFormat.eml else msg_attachments
    try:
        attached = read(data, depth=depth, config=config.attachments)
    except Exception as e:  # the body was read; attachments the parser cannot walk are recorded, not fatal
        attached = Attachments([], [AttachmentError(error=f"attachments not readable: {type(e).__name__}: {e}"[:500])])
    if not elements:
        # No body text: the names of its attachments are what the message says (and make it findable).
        elements = listing(attached, what="Attachments", budget=CharBudget(config.max_chars, doc_id=doc_id))
    if not elements:
        raise NoTextFound(f"no text found in the {fmt.value.upper()} file", doc_id=doc_id)
    return ExtractedDocument(
        format=fmt, mime=mime, elements=elements, attachments=attached.found, attachment_errors=attached.errors
    )
