"""Typed rows of the silver and gold tables: what every writer builds and the lakehouse writer commits.

The column lists are those of ``pipelines.lakehouse.schemas`` (DOCUMENTS, CHUNKS); a test checks
that the two agree, so a new column cannot be added to one and forgotten in the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelines.contracts.documents import DocumentIdentity, DocumentStatus

__all__ = ["GoldRow", "SilverRow"]


class SilverRow(DocumentIdentity):
    """One row of silver.documents: a document's current version, its text and its state."""

    model_config = ConfigDict(use_enum_values=True)

    metadata_json: str | None = "{}"
    text: str | None = None
    elements_json: str | None = None
    page_count: int | None = None
    page_errors_json: str | None = None
    pages_json: str | None = None
    parent_doc_id: str | None = None
    attachment_errors_json: str | None = None
    # Who may read it (null: the whole tenant); see pipelines.contracts.acl.
    acl: list[str] | None = None
    chunks: int | None = 0
    chunks_embedded: int | None = 0
    chunks_reused: int | None = 0
    model_id: str | None = None
    chunker_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def tombstone(self, version: int) -> SilverRow:
        """The ``deleted`` version that replaces this row: no text, no chunks, the same identity."""
        return SilverRow(
            tenant=self.tenant,
            doc_id=self.doc_id,
            version=version,
            status=DocumentStatus.deleted,
            filename=self.filename,
            mime=self.mime,
            format=self.format,
            source_uri=self.source_uri,
            content_sha256=self.content_sha256,
            size_bytes=self.size_bytes,
            metadata_json=self.metadata_json,
            acl=self.acl,
            # Kept: a deleted attachment still says where it came from (purge follows the link).
            parent_doc_id=self.parent_doc_id,
            created_at=self.created_at,
        )

    def row(self) -> dict[str, Any]:
        return self.model_dump()


class GoldRow(BaseModel):
    """One row of a gold chunks table: a chunk's text, where it came from, and its embedding."""

    tenant: str
    chunk_id: str
    doc_id: str
    doc_version: int
    ordinal: int | None = None
    text: str | None = None
    text_sha256: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    heading_path: list[str] | None = None
    embedding: list[float] | None = None
    model_id: str | None = None
    chunker_id: str | None = None
    filename: str | None = None
    metadata_json: str | None = None
    updated_at: datetime | None = None
    # The document's acl at doc_version (null: public).
    acl: list[str] | None = None

    def row(self) -> dict[str, Any]:
        return self.model_dump()
