"""What a file is, decided from its bytes.

The filename's extension is only a tie-breaker between text formats that bytes cannot tell apart
(Markdown or CSV versus plain text): uploads are routinely misnamed (a DOCX saved as ``.doc``, an
email saved as ``.txt``), and a parser chosen by extension fails on them or, worse, yields garbage.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from typing import NamedTuple

from pipelines.contracts.documents import DocFormat
from pipelines.errors import EncryptedDocument, ExtractionError, NoTextFound, UnsupportedFormat
from pipelines.extract.encoding import decode_text
from pipelines.extract.images import image_mime

__all__ = ["MIME_TYPES", "TSV_MIME", "Detected", "detect", "detect_format"]

MIME_TYPES: dict[DocFormat, str] = {
    DocFormat.pdf: "application/pdf",
    DocFormat.docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    DocFormat.pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    DocFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DocFormat.html: "text/html",
    DocFormat.markdown: "text/markdown",
    DocFormat.eml: "message/rfc822",
    DocFormat.msg: "application/vnd.ms-outlook",
    DocFormat.text: "text/plain",
    DocFormat.csv: "text/csv",
    DocFormat.zip: "application/zip",
    DocFormat.xls: "application/vnd.ms-excel",
    DocFormat.rtf: "application/rtf",
    DocFormat.odt: "application/vnd.oasis.opendocument.text",
    DocFormat.epub: "application/epub+zip",
}
# Zip packages that say what they are in their "mimetype" member and are read (through pandoc).
_ZIP_MIMETYPES: dict[str, DocFormat] = {
    "application/vnd.oasis.opendocument.text": DocFormat.odt,
    "application/epub+zip": DocFormat.epub,
}
# Tab-separated files are DocFormat.csv with this mime; the extractor picks the delimiter from it.
TSV_MIME = "text/tab-separated-values"

# The part that makes an OOXML package a given format; checked in this order.
_OOXML_MAIN_PARTS: tuple[tuple[str, DocFormat], ...] = (
    ("word/document.xml", DocFormat.docx),
    ("ppt/presentation.xml", DocFormat.pptx),
    ("xl/workbook.xml", DocFormat.xlsx),
)

# Content types of a package's main part ("...wordprocessingml.document.main+xml", macro-enabled and
# template variants included), as declared in [Content_Types].xml.
_OOXML_MAIN_TYPES: tuple[tuple[re.Pattern[bytes], DocFormat], ...] = (
    (re.compile(rb"(?:wordprocessingml|ms-word)\.[\w.]+\.main\+xml"), DocFormat.docx),
    (re.compile(rb"(?:presentationml|ms-powerpoint)\.[\w.]+\.main\+xml"), DocFormat.pptx),
    (re.compile(rb"(?:spreadsheetml|ms-excel)\.[\w.]+\.main\+xml"), DocFormat.xlsx),
)
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Binary formats we recognise only to name them in the error.
_BINARY_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"\x7fELF", "application/x-executable"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
)

_MAIL_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "subject", "date", "received", "message-id", "mime-version",
        "return-path", "delivered-to", "reply-to", "sender", "x-original-to", "in-reply-to",
        "references", "content-type", "content-transfer-encoding", "x-mailer", "dkim-signature",
        "authentication-results", "x-gmail-labels", "thread-topic", "thread-index",
    }
)  # fmt: skip
_PDF_OBJECT_RE = re.compile(rb"\d+\s+\d+\s+obj\b")
_HEADER_LINE_RE = re.compile(r"^([!-9;-~]+):")
_HTML_START_RE = re.compile(
    r"<(?:!doctype\s+html|html|head|body|meta|title|div|p|h[1-6]|table|pre|span|section|article|header"
    r"|nav|main|ul|ol|form|center|font|a|b|i|br|img|link|script|style)[\s/>]"
)
_HTML_ANYWHERE_RE = re.compile(r"<(?:!doctype\s+html|html|body)[\s>]")
_LEADING_NOISE_RE = re.compile(r"^(?:\s+|<\?xml[^>]*\?>|<!--.*?-->)+", re.DOTALL)

_MARKDOWN_EXTS = frozenset({"md", "markdown", "mdown", "mkd", "mkdn"})
_HTML_EXTS = frozenset({"html", "htm", "xhtml", "shtml"})
_TSV_EXTS = frozenset({"tsv", "tab"})


class Detected(NamedTuple):
    format: DocFormat
    mime: str
    text: str | None
    """The decoded text for text-family formats, so extraction does not decode twice."""


def detect_format(data: bytes, *, filename: str | None = None, doc_id: str | None = None) -> tuple[DocFormat, str]:
    """Decide a document's format from its bytes.

    Args:
        data: the file's bytes.
        filename: its name, used only to tell Markdown/CSV/TSV from plain text.
        doc_id: carried on any error raised.

    Returns:
        ``(format, mime)``.

    Raises:
        EncryptedDocument: a password-protected Office file (OOXML inside an OLE2 container).
        UnsupportedFormat: legacy Office, OpenDocument other than text (ODS, ODP), GIF, audio, video and other
            binary data (a zip that is not OOXML, OpenDocument or EPUB is an archive, DocFormat.zip).
        NoTextFound: empty or whitespace-only input.
        ExtractionError: a damaged container whose kind cannot be told.
    """
    found = detect(data, filename=filename, doc_id=doc_id)
    return found.format, found.mime


def detect(data: bytes, *, filename: str | None = None, doc_id: str | None = None) -> Detected:
    """Like :func:`detect_format`, and also return the decoded text of text-family formats."""
    if not data.strip():
        raise NoTextFound("the file is empty" if not data else "the file holds only whitespace", doc_id=doc_id)
    if _looks_like_pdf(data):
        return _binary(DocFormat.pdf)
    if data.startswith(_ZIP_MAGICS):
        return _binary(_detect_zip(data, doc_id))
    if data.startswith(_OLE2_MAGIC):
        return _binary(_detect_ole2(data, doc_id))
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        return _binary(DocFormat.rtf)
    image = image_mime(data)
    if image is not None:
        return Detected(DocFormat.image, image, None)
    for magic, mime in _BINARY_MAGICS:
        if data.startswith(magic):
            raise UnsupportedFormat(f"unsupported format {mime}", doc_id=doc_id)
    if data[8:12] == b"WEBP" or data[4:8] == b"ftyp":
        raise UnsupportedFormat("unsupported format: image or video container", doc_id=doc_id)

    decoded = decode_text(data)
    if decoded is None:
        raise UnsupportedFormat("unsupported format: binary data that is not a known document type", doc_id=doc_id)
    text = decoded.text
    if not text.strip():
        raise NoTextFound("the file holds only whitespace", doc_id=doc_id)
    ext = _extension(filename)
    return Detected(*_detect_text(text, ext), text)


def _looks_like_pdf(data: bytes) -> bool:
    # Readers accept junk before the header (they search the first 1024 bytes); a text file that merely
    # mentions "%PDF-" is told apart by the absence of PDF objects.
    pos = data.find(b"%PDF-", 0, 1024)
    if pos == 0:
        return True
    return pos > 0 and _PDF_OBJECT_RE.search(data, pos, pos + 8192) is not None


def _binary(fmt: DocFormat) -> Detected:
    return Detected(fmt, MIME_TYPES[fmt], None)


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].lower()


def _detect_zip(data: bytes, doc_id: str | None) -> DocFormat:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            # Read only the start of a member: a zip bomb can hide behind any name.
            mimetype = _read_member(zf, "mimetype", 100).decode("ascii", "replace") if "mimetype" in names else ""
            content_types = _read_member(zf, "[Content_Types].xml", 1 << 20) if "[Content_Types].xml" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        # No readable central directory (truncated or fuzzed). The local file headers still name the
        # parts, so a damaged DOCX is reported as a damaged DOCX rather than as an unknown format.
        local_names = _local_header_names(data)
        for part, fmt in _OOXML_MAIN_PARTS:
            if any(name.startswith(part.split("/")[0] + "/") for name in local_names):
                raise ExtractionError(
                    f"damaged {fmt.value.upper()} file: not a readable zip package ({e})", doc_id=doc_id
                ) from e
        raise UnsupportedFormat(f"unsupported format: damaged zip archive ({e})", doc_id=doc_id) from e
    for part, fmt in _OOXML_MAIN_PARTS:
        if part in names:
            return fmt
    # The main part may have another name (some generators write word/document2.xml); its content type,
    # declared in [Content_Types].xml, is what makes the package a document of a kind.
    for pattern, fmt in _OOXML_MAIN_TYPES:
        if pattern.search(content_types):
            return fmt
    if mimetype:
        # OpenDocument (application/vnd.oasis.opendocument.*) and EPUB (application/epub+zip) say what
        # they are in a "mimetype" member; of those, text documents and books are read.
        mimetype = mimetype.strip()
        if mimetype in _ZIP_MIMETYPES:
            return _ZIP_MIMETYPES[mimetype]
        raise UnsupportedFormat(f"unsupported format {mimetype}", doc_id=doc_id)
    # Any other zip is an archive: its members become documents of their own (pipelines.extract.attachments).
    return DocFormat.zip


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with zf.open(name) as member:
        return member.read(limit)


def _local_header_names(data: bytes, limit: int = 10_000) -> list[str]:
    """Member names from the zip's local file headers, which precede each member's data."""
    names: list[str] = []
    pos = data.find(b"PK\x03\x04")
    while pos != -1 and len(names) < limit:
        name_len, extra_len = struct.unpack_from("<HH", data, pos + 26) if pos + 30 <= len(data) else (0, 0)
        names.append(data[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace"))
        pos = data.find(b"PK\x03\x04", pos + 30 + name_len + extra_len)
    return names


def _detect_ole2(data: bytes, doc_id: str | None) -> DocFormat:
    """OLE2 compound files: an Outlook message, an encrypted OOXML package or a legacy binary Office file.

    Of the legacy formats only Excel's is read (xlrd parses BIFF with no other program). Word's .doc and
    PowerPoint's .ppt are refused with a clear reason: the tools that read them here are antiword/catdoc
    (plain text only: no headings or tables, unmaintained upstream) or a headless LibreOffice (hundreds of
    MB installed and seconds of start per file); uploads of them are rare next to DOCX/PPTX.
    """
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except Exception as e:  # olefile raises bare OSError/IndexError/struct.error on damaged files
        raise UnsupportedFormat(f"unsupported format: damaged OLE2 compound file ({e})", doc_id=doc_id) from e
    if "EncryptedPackage" in streams:
        raise EncryptedDocument(
            "the document is password-protected (encrypted Office package); remove the password and upload again",
            doc_id=doc_id,
        )
    if "WordDocument" in streams:
        kind = "legacy Word .doc (application/msword)"
    elif "Workbook" in streams or "Book" in streams:
        return DocFormat.xls  # read by xlrd (through pandas), as unstructured's spreadsheet partitioner does
    elif "PowerPoint Document" in streams:
        kind = "legacy PowerPoint .ppt (application/vnd.ms-powerpoint)"
    elif "__properties_version1.0" in streams and any(s.startswith("__substg1.0_") for s in streams):
        return DocFormat.msg
    else:
        kind = "OLE2 compound file"
    raise UnsupportedFormat(f"unsupported format: {kind}; save it as DOCX/PPTX/EML", doc_id=doc_id)


def _detect_text(text: str, ext: str) -> tuple[DocFormat, str]:
    if _looks_like_email(text):
        return DocFormat.eml, MIME_TYPES[DocFormat.eml]
    if _looks_like_html(text, ext):
        return DocFormat.html, MIME_TYPES[DocFormat.html]
    if ext in _MARKDOWN_EXTS:
        return DocFormat.markdown, MIME_TYPES[DocFormat.markdown]
    if ext == "csv":
        return DocFormat.csv, MIME_TYPES[DocFormat.csv]
    if ext in _TSV_EXTS:
        return DocFormat.csv, TSV_MIME
    return DocFormat.text, MIME_TYPES[DocFormat.text]


def _looks_like_email(text: str) -> bool:
    """An RFC 822 header block: header lines (with folded continuations) up to a blank line or the end,
    naming at least two distinct well-known mail headers. An mbox "From " line may precede it."""
    lines = text[:20_000].lstrip("\ufeff").splitlines()[:200]
    if lines and lines[0].startswith("From "):
        lines = lines[1:]
    known: set[str] = set()
    count = 0
    for line in lines:
        if not line.strip():
            break
        if line[0] in " \t":
            if count == 0:
                return False
            continue
        match = _HEADER_LINE_RE.match(line)
        if match is None:
            return False
        count += 1
        name = match.group(1).lower()
        if name in _MAIL_HEADERS:
            known.add(name)
    return len(known) >= 2


def _looks_like_html(text: str, ext: str) -> bool:
    head = _LEADING_NOISE_RE.sub("", text[:8192].lstrip("\ufeff")).lower()
    if ext in _MARKDOWN_EXTS:
        # Markdown may start with inline HTML (<div align="center">); only a full page is HTML.
        return re.match(r"<(?:!doctype\s+html|html|head|body)[\s>]", head) is not None
    if _HTML_START_RE.match(head):
        return True
    if ext in _HTML_EXTS and re.search(r"<[a-z!/]", head):
        return True
    return ext not in ("txt", "csv", *_TSV_EXTS) and _HTML_ANYWHERE_RE.search(head[:4096]) is not None
