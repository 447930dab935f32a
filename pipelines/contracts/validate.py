"""Validation of caller-given ids and metadata, shared by the API, the CLI and the stream."""

from __future__ import annotations

import json
import re
from typing import Any

from pipelines.contracts.ids import MetadataValue
from pipelines.errors import InvalidInput

__all__ = ["validate_doc_id", "validate_metadata"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


_MAX_METADATA_BYTES = 16_384


def validate_doc_id(doc_id: str, *, what: str = "doc_id") -> str:
    if not _ID.match(doc_id):
        raise InvalidInput(
            f"{what} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
            doc_id=doc_id,
        )
    return doc_id


def validate_metadata(metadata: Any, *, doc_id: str | None = None) -> dict[str, MetadataValue]:
    """Metadata is a flat JSON object of strings, numbers and booleans (filters match it exactly)."""
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", doc_id=doc_id)
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > 128 or "=" in key:
            raise InvalidInput(f"metadata key {key!r} must be a non-empty string without '='", doc_id=doc_id)
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"metadata value of {key!r} must be a string, number or boolean", doc_id=doc_id)
    if len(json.dumps(metadata)) > _MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is larger than {_MAX_METADATA_BYTES} bytes", doc_id=doc_id)
    return dict(metadata)
