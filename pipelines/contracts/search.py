"""What a search asks and what it answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.contracts.acl import PrincipalList
from pipelines.contracts.ids import MetadataValue

__all__ = ["FusionMethod", "RankConfig", "SearchHit", "SearchMode", "SearchQuery"]

SearchMode = Literal["dense", "keyword", "hybrid"]
FusionMethod = Literal["rrf", "score"]


class RankConfig(BaseModel):
    """How the service ranks candidates (from Settings; the same for every query of a process)."""

    model_config = ConfigDict(frozen=True)

    fusion: FusionMethod = Field(
        default="score",
        description="Hybrid fusion: rrf (weighted reciprocal rank) or score (weighted sum of min-max scaled scores).",
    )
    dense_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="Weight of the dense list in fusion.")
    keyword_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="Weight of the keyword list in fusion.")
    rrf_k: int = Field(default=60, ge=1, le=1000, description="RRF's rank damping constant k in w / (k + rank).")
    depth: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Candidates taken from each retriever before fusion, collapsing, MMR or reranking.",
    )
    rerank_depth: int = Field(
        default=30, ge=1, le=200, description="How many of the best candidates the reranker rescores."
    )


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
    mode: SearchMode | None = Field(
        default=None,
        description=(
            "dense (embeddings), keyword (BM25 full text) or hybrid (both, fused). Default: hybrid where the vector"
            " store has keyword search (LanceDB), dense where it has not (Pinecone)."
        ),
    )
    collapse_duplicates: bool = Field(
        default=True,
        description="Keep one of each group of near-duplicate chunks (same words, ignoring case and spacing).",
    )
    mmr: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Diversify with maximal marginal relevance: λ weighs relevance against similarity to the chunks"
            " already chosen (1 = relevance only, 0.5 a balance). Off by default."
        ),
    )
    rerank: bool = Field(
        default=False,
        description=(
            "Rescore the best candidates with the cross-encoder of DOCLAKE_RERANK_MODEL (422 when none is set)."
        ),
    )
    principals: PrincipalList = Field(
        default_factory=list,
        description=(
            'The end user\'s identities (e.g. ["user:ana", "group:sre"]), passed by the application. A document'
            " with an acl is returned only when its acl names one of them; without principals, only documents"
            " without an acl. With as_of, the acls as they were then."
        ),
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
    ocr: bool = Field(default=False, description="The chunk's text (some of its pages) was read by OCR from images.")
    parent_doc_id: str | None = Field(
        default=None, description="The document (an e-mail) this one was attached to, for attachments."
    )
