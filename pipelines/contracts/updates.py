"""Change events: the stream's contract with producers (JSON Schema via ``doclake schemas``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pipelines.contracts.acl import AclList
from pipelines.contracts.ids import DEFAULT_TENANT, MetadataValue

__all__ = ["DocumentUpdate", "UpdateOp"]


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
    acl: AclList | None = Field(
        default=None,
        description=(
            'upsert, patch_metadata: the principals who may read the document (e.g. ["group:sre"]). Absent: keep'
            " the current acl; null: readable by the whole tenant. The same rules as the API's `acl`."
        ),
    )
    ts: AwareDatetime = Field(description="When the change happened (timezone-aware); breaks version ties.")

    @property
    def sets_acl(self) -> bool:
        """Whether the event says who may read the document (``acl`` given, null included) or keeps it."""
        return "acl" in self.model_fields_set

    def to_json(self) -> str:
        """The event as JSON that parses back to the same event: an acl not given stays absent (null would clear it)."""
        return self.model_dump_json(exclude=None if self.sets_acl else {"acl"})

    @model_validator(mode="after")
    def _op_fields(self) -> DocumentUpdate:
        if self.op == UpdateOp.upsert and not (self.text and self.text.strip()):
            raise ValueError("an upsert needs a non-empty text")
        if self.op == UpdateOp.patch_metadata and self.metadata is None and not self.sets_acl:
            raise ValueError("a patch_metadata event needs metadata or acl")
        for key in self.metadata or {}:
            if not key or len(key) > 128 or "=" in key:
                raise ValueError(f"metadata key {key!r} must be a non-empty string without '='")
        return self
