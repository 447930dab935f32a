"""Pydantic contracts: the shapes that cross a boundary (API, broker, tables, vector store).

Every model here can be exported as JSON Schema (``doclake schemas``), so producers in other systems
can validate against the same definitions the pipeline uses.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_TENANT",
    "ELEMENT_SEPARATOR",
    "Chunk",
    "ChunkRecord",
    "ChunkerConfig",
    "DocFormat",
    "DocumentRecord",
    "DocumentStatus",
    "DocumentUpdate",
    "Element",
    "ElementKind",
    "ExtractedDocument",
    "IngestTask",
    "MetadataValue",
    "PageError",
    "RegisterResult",
    "SearchHit",
    "SearchMode",
    "SearchQuery",
    "UpdateOp",
    "VectorRecord",
    "chunk_id_for",
    "sha256_hex",
]

DEFAULT_TENANT = "default"
ELEMENT_SEPARATOR = "\n\n"

MetadataValue = str | int | float | bool


def sha256_hex(data: bytes | str) -> str:
    """Hex sha256 of bytes, or of a string's UTF-8 encoding."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def chunk_id_for(tenant: str, doc_id: str, text_sha256: str, occurrence: int) -> str:
    """Stable chunk id (DESIGN §3): the same text at the same occurrence keeps its id across versions.

    The tenant is part of the hash so ids are unique across tenants in a shared vector index.
    """
    return sha256_hex(f"{tenant}\x1f{doc_id}\x1f{text_sha256}\x1f{occurrence}")[:32]


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
    text = "txt"
    csv = "csv"


class ElementKind(StrEnum):
    title = "title"  # type: ignore[assignment]  # shadows str.title on purpose: the name is the value
    text = "text"
    list_item = "list_item"
    table = "table"
    other = "other"


class Element(BaseModel):
    """One structural unit of a document: a heading, a paragraph, a table, a page of PDF text."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(description="The element's text, stripped; never empty.")
    kind: ElementKind = Field(default=ElementKind.text, description="Structural role.")
    page: int | None = Field(default=None, description="1-based page (slide, sheet) number, if known.")
    level: int = Field(default=0, description="Heading depth for titles (0 = top level).")


class PageError(BaseModel):
    page: int = Field(description="1-based page number that failed.")
    error: str = Field(description="Why its text could not be read.")


class ExtractedDocument(BaseModel):
    """What extraction yields: ordered elements. The document text is the elements joined by a blank line."""

    format: DocFormat
    mime: str
    elements: list[Element]
    page_count: int | None = None
    page_errors: list[PageError] = Field(default_factory=list)

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

    @property
    def config_id(self) -> str:
        return "c" + sha256_hex(self.model_dump_json())[:12]


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


class DocumentRecord(BaseModel):
    """The public view of a silver.documents row (without its text)."""

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
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    chunks: int = 0
    chunks_embedded: int = Field(default=0, description="Chunks embedded for the current version.")
    chunks_reused: int = Field(default=0, description="Chunks whose vector was reused from gold.")
    page_count: int | None = None
    page_errors: list[PageError] = Field(default_factory=list)
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


SearchMode = Literal["dense", "keyword", "hybrid"]


class SearchQuery(BaseModel):
    query: str = Field(min_length=1, max_length=4096, description="Natural-language query.")
    top_k: int = Field(default=10, ge=1, le=100, description="How many chunks to return.")
    filter: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Metadata keys that must match exactly (all of them)."
    )
    as_of: int | datetime | None = Field(
        default=None,
        description=(
            "Search gold as it was then: a Delta version of the active index's gold table (see `doclake history`)"
            " or an ISO 8601 timestamp. Exact search over that snapshot; slower than a live search."
        ),
    )
    mode: SearchMode = Field(
        default="dense",
        description="dense (embeddings), keyword (BM25 full text) or hybrid (both, fused by reciprocal rank).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"query": "how do I find large files?", "top_k": 5, "filter": {"team": "ops"}}]}
    )


class SearchHit(BaseModel):
    chunk_id: str
    doc_id: str
    version: int
    filename: str | None
    text: str
    score: float
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class IngestTask(BaseModel):
    """Arguments every Celery step takes: primitive, JSON-safe."""

    tenant: str
    doc_id: str
    version: int
    step: Literal["register", "extract", "chunk_embed", "mirror"] = "extract"


class UpdateOp(StrEnum):
    upsert = "upsert"
    delete = "delete"
    patch_metadata = "patch_metadata"


_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class DocumentUpdate(BaseModel):
    """A document change event: the payload of ``bronze.document_updates`` rows and Kafka ``documents_updates``.

    Versions are monotonic per document and shared with uploads: the stream applies an event only
    when its version is newer than what silver holds, so replays and out-of-order events are harmless.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, description="Unique id of the event (idempotency key).")
    tenant: str = Field(default=DEFAULT_TENANT, pattern=_ID_PATTERN, description="Tenant owning the document.")
    doc_id: str = Field(pattern=_ID_PATTERN, description="Document the event is about.")
    op: UpdateOp = Field(description="upsert (new text), delete, or patch_metadata (merge metadata keys).")
    version: int = Field(ge=1, description="Document version this event produces; must exceed the current one.")
    text: str | None = Field(default=None, max_length=10_000_000, description="The document's full text (upsert).")
    source_uri: str | None = Field(default=None, max_length=2048, description="Where the text came from.")
    metadata: dict[str, MetadataValue] | None = Field(
        default=None,
        description="upsert: the document's metadata (default: keep the current one); patch_metadata: keys to set.",
    )
    ts: AwareDatetime = Field(description="When the change happened (timezone-aware); breaks version ties.")

    @model_validator(mode="after")
    def _op_fields(self) -> DocumentUpdate:
        if self.op == UpdateOp.upsert and not (self.text and self.text.strip()):
            raise ValueError("an upsert needs a non-empty text")
        if self.op == UpdateOp.patch_metadata and self.metadata is None:
            raise ValueError("a patch_metadata event needs metadata")
        for key in self.metadata or {}:
            if not key or len(key) > 128 or "=" in key:
                raise ValueError(f"metadata key {key!r} must be a non-empty string without '='")
        return self
