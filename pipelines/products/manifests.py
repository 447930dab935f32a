"""The manifests of doclake's data products: owner, schema, freshness SLO and quality checks.

They live in code, next to the contracts their schemas come from, so a change to an SLO or a check
is a reviewed change like any other; ``GET /v1/products`` and ``doclake products check`` serve and
enforce exactly these.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipelines.contracts.documents import ChunkRecord, DocumentRecord

__all__ = ["MANIFESTS", "CheckSpec", "ProductManifest"]


class CheckSpec(BaseModel):
    name: str = Field(description="Stable id of the check within its product.")
    description: str = Field(description="What must hold.")


class ProductManifest(BaseModel):
    name: str = Field(description="Product id.")
    description: str
    owner: str = Field(description="Who answers for the product's contract and SLO.")
    table: str = Field(description="The Delta table that is the product's output port.")
    contract: str = Field(description="The pydantic contract its rows validate against.")
    row_schema: dict[str, Any] = Field(description="JSON Schema of one row, generated from the contract.")
    freshness_slo_s: float = Field(description="Oldest input this product may leave unprocessed, in seconds.")
    freshness: str = Field(description="What the freshness SLO measures.")
    checks: list[CheckSpec]
    pages_with_text_slo: float | None = Field(
        default=None, description="Least share of the pages of indexed documents that must yield text (0-1)."
    )
    low_confidence_below: float | None = Field(
        default=None, description="OCR confidence (0-1) under which a page is listed as low-confidence."
    )


_DOCUMENTS = ProductManifest(
    name="documents",
    description="Current text, elements, metadata and processing status of every document (silver).",
    owner="team:doclake-ingestion",
    table="silver.documents",
    contract="DocumentRecord",
    row_schema=DocumentRecord.model_json_schema(),
    freshness_slo_s=900.0,
    freshness="age (since its version was received) of the oldest document still queued or extracting",
    checks=[
        CheckSpec(name="freshness", description="No document waits longer than the SLO to be extracted."),
        CheckSpec(name="rows_match_contract", description="Every row validates against DocumentRecord."),
        CheckSpec(name="failed_have_error", description="Every failed document says why."),
        CheckSpec(name="indexed_have_chunks", description="Every indexed document has at least one chunk in gold."),
        CheckSpec(
            name="chunk_counts_match", description="An indexed document's `chunks` equals its rows in gold.chunks."
        ),
        CheckSpec(
            name="pages_with_text",
            description=(
                "Extraction quality: the share of pages of indexed documents that yielded text (by their text "
                "layer or by OCR) is at least the SLO; pages without text are listed."
            ),
        ),
        CheckSpec(
            name="ocr_low_confidence",
            description=(
                "OCR'd pages whose mean word confidence is under the threshold are listed; the check fails when "
                "they are more than the SLO allows (1 - pages_with_text_slo of the OCR'd pages)."
            ),
        ),
    ],
    pages_with_text_slo=0.98,
    low_confidence_below=0.6,
)

_CHUNKS = ProductManifest(
    name="chunks",
    description="Chunk text, page and char spans and embeddings of indexed documents (gold), mirrored to search.",
    owner="team:doclake-retrieval",
    table="gold.chunks",
    contract="ChunkRecord",
    row_schema=ChunkRecord.model_json_schema(),
    freshness_slo_s=900.0,
    freshness="age (since its version was received) of the oldest document extracted but not yet indexed",
    checks=[
        CheckSpec(name="freshness", description="No extracted document waits longer than the SLO for its chunks."),
        CheckSpec(name="embeddings_present", description="No chunk without an embedding of the model's dimension."),
        CheckSpec(name="chunks_have_document", description="Every chunk belongs to a live (not deleted) document."),
        CheckSpec(name="no_chunk_without_vector", description="Every gold chunk id is in the vector store."),
        CheckSpec(name="no_vector_without_chunk", description="Every vector in the store has its gold chunk."),
        CheckSpec(name="vector_count_matches_gold", description="Vector store count equals gold.chunks count."),
    ],
)

MANIFESTS: dict[str, ProductManifest] = {m.name: m for m in (_DOCUMENTS, _CHUNKS)}
