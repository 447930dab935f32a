"""Request and response models of the HTTP API (the pipeline contracts, shaped for the edge)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from pipelines.contracts.acl import AclList
from pipelines.contracts.documents import AttachmentError, DocumentRecord, DocumentStatus, PageError, PageInfo
from pipelines.contracts.evals import EvalFigures, EvalResult, EvalSetSummary
from pipelines.contracts.ids import MetadataValue
from pipelines.contracts.search import SearchHit, SearchMode, SearchQuery
from pipelines.products.checks import CheckResult, ProductReport
from pipelines.products.manifests import ProductManifest
from pipelines.serve.rag import Citation, RagContext, RagQuery
from pipelines.serve.stats import LakeStats

# The pipeline contracts that cross the edge unchanged are re-exported here, so the API and the
# Python clients share one set of typed models.
__all__ = [
    "BatchItem",
    "BatchUploadAccepted",
    "CheckResult",
    "Citation",
    "DocumentList",
    "DocumentPublic",
    "EvalResultList",
    "EvalResultPublic",
    "EvalSetList",
    "EvalSetSummary",
    "Health",
    "LakeStats",
    "MetadataPatch",
    "PatchAccepted",
    "Problem",
    "ProductList",
    "ProductManifest",
    "ProductPublic",
    "ProductReport",
    "RagContext",
    "RagQuery",
    "SearchHit",
    "SearchQuery",
    "SearchResponse",
    "UploadAccepted",
]


class BatchItem(BaseModel):
    """What became of one file of a batch upload (in the order the files were sent)."""

    index: int = Field(description="Position of the file in the request.")
    filename: str | None = None
    doc_id: str | None = None
    version: int | None = None
    status: DocumentStatus | None = None
    duplicate: bool = False
    error: str | None = Field(default=None, description="Why this file was rejected (nothing was stored for it).")


class BatchUploadAccepted(BaseModel):
    accepted: int = Field(description="Files queued as new versions.")
    duplicates: int = Field(description="Files identical to their document's current version: nothing queued.")
    rejected: int = Field(description="Files refused (see each item's error); the others were still accepted.")
    items: list[BatchItem]


class UploadAccepted(BaseModel):
    doc_id: str
    version: int
    status: DocumentStatus
    duplicate: bool = Field(
        default=False, description="Identical bytes were already the current version: nothing queued."
    )

    model_config = {"json_schema_extra": {"examples": [{"doc_id": "d3f1c0ffee", "version": 1, "status": "queued"}]}}


class DocumentPublic(BaseModel):
    doc_id: str
    version: int
    status: DocumentStatus
    error: str | None
    filename: str | None
    mime: str | None
    format: str | None
    size_bytes: int | None
    content_sha256: str | None
    metadata: dict[str, MetadataValue]
    chunks: int
    chunks_embedded: int
    chunks_reused: int
    page_count: int | None
    page_errors: list[PageError]
    pages: list[PageInfo] = Field(
        default_factory=list,
        description="Per page: where its text came from (`text_layer` or `ocr`) and OCR confidence.",
    )
    parent_doc_id: str | None = Field(
        default=None,
        description=(
            "The e-mail or archive this document was extracted from as an attachment (null for uploads); "
            "`GET /v1/documents?parent=<doc_id>` lists a document's attachments."
        ),
    )
    attachment_errors: list[AttachmentError] = Field(
        default_factory=list,
        description='Attachments of this e-mail or archive that were not extracted, and why ("attachment bomb: …").',
    )
    acl: list[str] | None = Field(
        default=None,
        description="The principals who may read the document (search `principals`); null: every caller of the tenant.",
    )
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, record: DocumentRecord) -> DocumentPublic:
        return cls.model_validate(record.model_dump(exclude={"tenant", "source_uri"}))

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "doc_id": "handbook",
                    "version": 2,
                    "status": "indexed",
                    "error": None,
                    "filename": "handbook.pdf",
                    "mime": "application/pdf",
                    "format": "pdf",
                    "size_bytes": 24607,
                    "content_sha256": "f17a09190ad8…",
                    "metadata": {"team": "ops"},
                    "chunks": 12,
                    "chunks_embedded": 1,
                    "chunks_reused": 11,
                    "page_count": 4,
                    "page_errors": [],
                    "pages": [{"page": 1, "source": "text_layer", "chars": 2310, "ocr_confidence": None}],
                    "parent_doc_id": None,
                    "attachment_errors": [],
                    "acl": ["group:sre"],
                    "created_at": "2026-11-22T10:00:00Z",
                    "updated_at": "2026-11-22T10:00:03Z",
                }
            ]
        }
    }


class DocumentList(BaseModel):
    documents: list[DocumentPublic]
    total: int


class SearchResponse(BaseModel):
    results: list[SearchHit]
    mode: SearchMode | None = Field(
        default=None, description="The mode the search ran in (the default one when the query named none)."
    )


class Health(BaseModel):
    status: str = Field(description="ok, starting (the query model is loading) or failed (see error).")
    model_loaded: bool
    documents_dir: str
    error: str | None = Field(default=None, description="Why the query model could not be loaded.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    doc_id: str | None = None
    code: str | None = None


class ProductPublic(BaseModel):
    manifest: ProductManifest
    latest: ProductReport | None = Field(description="The most recent evaluation of its checks, if any.")


class ProductList(BaseModel):
    products: list[ProductPublic]
    ok: bool | None = Field(description="True when every check of every product passed at its latest evaluation.")


class MetadataPatch(BaseModel):
    """A change of a document's metadata and/or acl (at least one of them)."""

    metadata: dict[str, MetadataValue] | None = Field(
        default=None,
        description="Keys to set on the document's metadata (others are kept). Applied by the update stream.",
    )
    acl: AclList | None = Field(
        default=None,
        description=(
            "The principals who may read the document from now on (replaces the acl); null makes it readable by"
            " every caller of the tenant; absent keeps it. Metadata only: nothing is re-embedded."
        ),
    )

    @property
    def sets_acl(self) -> bool:
        return "acl" in self.model_fields_set

    @model_validator(mode="after")
    def _something(self) -> MetadataPatch:
        if self.metadata is None and not self.sets_acl:
            raise ValueError("give metadata, acl or both")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [{"metadata": {"team": "ops", "reviewed": True}}, {"acl": ["group:sre", "user:ana"]}]
        }
    }


class PatchAccepted(BaseModel):
    doc_id: str
    version: int = Field(description="The version the change becomes once the update stream applies it.")
    event_id: str = Field(description="Id of the patch_metadata event written to bronze.document_updates.")
    metadata: dict[str, MetadataValue] = Field(description="The document's metadata after the change.")
    acl: list[str] | None = Field(default=None, description="The document's acl after the change (null: the tenant).")


class EvalResultPublic(EvalFigures):
    """nDCG@10 and Recall@10 of one index on one eval set (a row of meta.eval_results)."""

    @classmethod
    def of(cls, result: EvalResult) -> EvalResultPublic:
        return cls.model_validate(result.model_dump(exclude={"tenant"}))

    model_config = {
        "protected_namespaces": (),
        "json_schema_extra": {
            "examples": [
                {
                    "eval_set": "scifact",
                    "set_sha256": "5be1c0…",
                    "index_id": "base",
                    "gold_version": 42,
                    "snapshot": "live",
                    "as_of": None,
                    "mode": "dense",
                    "top_k": 100,
                    "queries": 300,
                    "ndcg_at_10": 0.6507,
                    "recall_at_10": 0.7989,
                    "duration_s": 9.8,
                    "evaluated_at": "2026-12-02T10:00:00Z",
                }
            ]
        },
    }


class EvalResultList(BaseModel):
    results: list[EvalResultPublic] = Field(description="Newest first.")


class EvalSetList(BaseModel):
    sets: list[EvalSetSummary]
