"""Identifiers and hashes every stage agrees on: tenants, doc ids, chunk ids, metadata values."""

from __future__ import annotations

import hashlib

__all__ = ["DEFAULT_TENANT", "ELEMENT_SEPARATOR", "MetadataValue", "attachment_doc_id", "chunk_id_for", "sha256_hex"]

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


def attachment_doc_id(parent_doc_id: str, filename: str, occurrence: int) -> str:
    """The doc_id of a container's attachment: ``a`` + 24 hex digits of (parent, name, occurrence).

    Keyed by name rather than position, so a new version of an e-mail that adds or removes one
    attachment keeps the ids of the others (they become new versions, or stay when their bytes are the
    same); ``occurrence`` counts earlier attachments of the same name. A re-run derives the same ids.
    """
    return "a" + sha256_hex(f"{parent_doc_id}\x1f{filename}\x1f{occurrence}")[:24]
