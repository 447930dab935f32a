"""Documents, their elements and chunks, and the rows that describe them to users."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.contracts.ids import ELEMENT_SEPARATOR, MetadataValue, sha256_hex

__all__ = [
    "Attachment",
    "AttachmentError",
    "Chunk",
    "ChunkRecord",
    "ChunkerConfig",
    "DocFormat",
    "DocumentIdentity",
    "DocumentRecord",
    "DocumentStatus",
    "Element",
    "ElementKind",
    "ExtractedDocument",
    "IngestTask",
    "PageError",
    "PageInfo",
    "PageSource",
    "RegisterResult",
    "VectorRecord",
]


class DocumentStatus(StrEnum):
    queued = "queued"
    extracting = "extracting"
    embedding = "embedding"
    indexed = "indexed"
    failed = "failed"
    deleted = "deleted"

    @property
    def terminal(self) -> bool:
        return self in (DocumentStatus.indexed, DocumentStatus.failed, DocumentStatus.deleted)


class DocFormat(StrEnum):
    pdf = "pdf"
    docx = "docx"
    pptx = "pptx"
    xlsx = "xlsx"
    html = "html"
    markdown = "md"
    eml = "eml"
    msg = "msg"
    text = "txt"
    csv = "csv"
    image = "image"
    zip = "zip"
    xls = "xls"
    rtf = "rtf"
    odt = "odt"
    epub = "epub"

    @property
    def container(self) -> bool:
        """A format whose files carry other files (e-mail attachments, archive members): see ``Attachment``."""
        return self in (DocFormat.eml, DocFormat.msg, DocFormat.zip)


class ElementKind(StrEnum):
    title = "title"  # type: ignore[assignment]  # shadows str.title on purpose: the name is the value
    text = "text"
    list_item = "list_item"
    table = "table"
    other = "other"


class PageSource(StrEnum):
    """Where a page's text came from."""

    text_layer = "text_layer"
    ocr = "ocr"


class Element(BaseModel):
    """One structural unit of a document: a heading, a paragraph, a table, a page of PDF text."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(description="The element's text, stripped; never empty.")
    kind: ElementKind = Field(default=ElementKind.text, description="Structural role.")
    page: int | None = Field(default=None, description="1-based page (slide, sheet) number, if known.")
    level: int = Field(default=0, description="Heading depth for titles (0 = top level).")
    ocr: bool = Field(default=False, description="The text was read by OCR from a page image.")


class PageError(BaseModel):
    page: int = Field(description="1-based page number that failed.")
    error: str = Field(description="Why its text could not be read.")


class PageInfo(BaseModel):
    """How one page's text was obtained: the extraction-quality record of a page (PDFs, images)."""

    page: int = Field(description="1-based page (image frame) number.")
    source: PageSource = Field(description="`text_layer` (the file's own text) or `ocr` (read from the page image).")
    chars: int = Field(description="Characters of text the page yielded.")
    ocr_confidence: float | None = Field(
        default=None, description="Tesseract's mean word confidence on the page, 0-1 (OCR pages only)."
    )
    ocr_languages: str | None = Field(
        default=None,
        description=(
            "The Tesseract language packs the page was read with, `+` separated, the first the main one "
            "(OCR pages only): the configured ones, or a detected script's pack before them."
        ),
    )


class Attachment(BaseModel):
    """A file carried by a container document (an e-mail's attachment, an archive's member).

    Extraction returns it beside the text, never in it; the extract step registers it as a child document.
    """

    model_config = ConfigDict(frozen=True)

    filename: str = Field(description="Its name as the container gives it (a generated one when it has none).")
    content_type: str = Field(description="The type the container declares; detection decides from the bytes.")
    inline: bool = Field(default=False, description="Shown in the message body (an inline image), not attached.")
    data: bytes = Field(repr=False, description="The decoded bytes.")


class AttachmentError(BaseModel):
    """An attachment (or a group of them) of a container that was not extracted, and why."""

    filename: str | None = Field(default=None, description="The attachment's name; null for a group.")
    error: str = Field(description='Why, e.g. "attachment bomb: ..." for a refused bound.')


class ExtractedDocument(BaseModel):
    """What extraction yields: ordered elements. The document text is the elements joined by a blank line."""

    format: DocFormat
    mime: str
    elements: list[Element]
    page_count: int | None = None
    page_errors: list[PageError] = Field(default_factory=list)
    pages: list[PageInfo] = Field(default_factory=list, description="Per-page text source and OCR confidence.")
    attachments: list[Attachment] = Field(
        default_factory=list, description="Files this document carries (containers only), within the bounds."
    )
    attachment_errors: list[AttachmentError] = Field(
        default_factory=list, description="Attachments refused (a bound, an unreadable part)."
    )

    @property
    def text(self) -> str:
        return ELEMENT_SEPARATOR.join(e.text for e in self.elements)

    def element_offsets(self) -> list[int]:
        """Start offset of each element inside ``text``."""
        offsets: list[int] = []
        pos = 0
        for e in self.elements:
            offsets.append(pos)
            pos += len(e.text) + len(ELEMENT_SEPARATOR)
        return offsets


class ChunkerConfig(BaseModel):
    """How documents are cut into chunks; its id is recorded on every gold row."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int = Field(
        default=256, ge=16, le=8192, description="Most model tokens in one chunk, special tokens included."
    )
    overlap_tokens: int = Field(default=32, ge=0, description="Tokens repeated between windows of one long element.")
    break_on_headings: bool = Field(default=True, description="Start a new chunk at every heading.")
    # False when absent: an index recorded before this field existed embedded raw chunk text, and
    # reading its record must not change that (new lakes get Settings' default, true).
    embed_context: bool = Field(
        default=False,
        description=(
            "Embed each chunk with its document title and heading path in front (one line); the stored and"
            " returned text stays the chunk's own."
        ),
    )

    def canonical_json(self) -> str:
        """The config as JSON, leaving out ``embed_context`` when off, so ids of configs recorded before it
        existed stay what they were."""
        return self.model_dump_json(exclude=None if self.embed_context else {"embed_context"})

    @property
    def config_id(self) -> str:
        return "c" + sha256_hex(self.canonical_json())[:12]


class Chunk(BaseModel):
    ordinal: int
    text: str
    text_sha256: str
    occurrence: int = Field(description="How many earlier chunks of the document have the same text.")
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    heading_path: list[str] = Field(default_factory=list)


class RegisterResult(BaseModel):
    doc_id: str
    version: int
    status: DocumentStatus
    duplicate: bool = Field(default=False, description="True when identical bytes were already the current version.")

    @property
    def needs_processing(self) -> bool:
        """Whether the caller should enqueue the version's processing.

        A duplicate of a version still ``queued`` is enqueued again: the first registration may have
        died between its commit and its enqueue (a worker killed mid-task, a broker outage), and a
        redelivered or repeated registration is then the only thing that moves the document on. An
        extra enqueue is safe: the steps act only on the statuses they expect.
        """
        return not self.duplicate or self.status == DocumentStatus.queued


class DocumentIdentity(BaseModel):
    """What every view of a document version starts with: who it is, its state, and its raw object."""

    tenant: str
    doc_id: str
    version: int
    status: DocumentStatus
    error: str | None = None
    filename: str | None = None
    mime: str | None = None
    format: str | None = None
    source_uri: str | None = None
    content_sha256: str | None = None
    size_bytes: int | None = None


class DocumentRecord(DocumentIdentity):
    """The public view of a silver.documents row (without its text)."""

    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    chunks: int = 0
    chunks_embedded: int = Field(default=0, description="Chunks embedded for the current version.")
    chunks_reused: int = Field(default=0, description="Chunks whose vector was reused from gold.")
    page_count: int | None = None
    page_errors: list[PageError] = Field(default_factory=list)
    pages: list[PageInfo] = Field(default_factory=list, description="Per-page text source and OCR confidence.")
    parent_doc_id: str | None = Field(
        default=None, description="The document (an e-mail, an archive) this one was extracted from as an attachment."
    )
    attachment_errors: list[AttachmentError] = Field(
        default_factory=list, description="This document's attachments that were refused, and why."
    )
    acl: list[str] | None = Field(
        default=None, description="The principals who may read the document; null: every caller of the tenant."
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ChunkRecord(BaseModel):
    """A gold.chunks row."""

    tenant: str
    chunk_id: str
    doc_id: str
    doc_version: int
    ordinal: int
    text: str
    text_sha256: str
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    heading_path: list[str]
    embedding: list[float]
    model_id: str
    chunker_id: str
    filename: str | None = None
    metadata_json: str = "{}"

    @property
    def metadata(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.metadata_json)
        return loaded


class VectorRecord(BaseModel):
    """What the vector store mirrors of a gold row."""

    id: str
    tenant: str
    doc_id: str
    doc_version: int
    vector: list[float]
    text: str = ""
    filename: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    char_start: int = 0
    char_end: int = 0
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    acl: list[str] | None = Field(default=None, description="Who may read the chunk's document (null: the tenant).")


class IngestTask(BaseModel):
    """Arguments every Celery step takes: primitive, JSON-safe."""

    tenant: str
    doc_id: str
    version: int
    step: Literal["register", "extract", "chunk_embed", "mirror"] = "extract"
