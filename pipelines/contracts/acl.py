"""Per-document access control: who may read a document, and whether a caller may.

A document's acl is a list of principal strings (``"group:sre"``, ``"user:ana"``); ``None`` means the
document is public within its tenant. A caller passes ``principals`` (the end user's identities, as
the application knows them) and reads a document when the two intersect, or when it is public.

Where it lives: silver and gold rows carry ``acl`` (null = public); the vector stores carry it with
public documents stored as ``[PUBLIC]``, so the read check is one "does acl share an entry with principals + [PUBLIC]"
that a label-list index can serve. ``PUBLIC`` is therefore refused from users.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from pipelines.errors import InvalidInput

__all__ = [
    "KEEP",
    "MAX_ACL_PRINCIPALS",
    "MAX_PRINCIPAL_CHARS",
    "MAX_QUERY_PRINCIPALS",
    "PUBLIC",
    "AclArg",
    "AclList",
    "InvalidAcl",
    "PrincipalList",
    "check_principals",
    "parse_acl_text",
    "readable",
    "readers",
    "stored_acl",
    "validate_acl",
]

# The token a public document carries in the vector stores. Refused in every user-given acl or
# principal list: a user naming it would make a document public, or read every public one twice over.
PUBLIC = "*"
MAX_ACL_PRINCIPALS = 100
MAX_QUERY_PRINCIPALS = 256
MAX_PRINCIPAL_CHARS = 256


class _Keep(Enum):
    keep = "keep"


# "Leave the document's acl as it is": what a new version or a change that does not mention the acl does.
KEEP = _Keep.keep
# An acl as a change gives it: principals, None (readable by the tenant) or KEEP.
AclArg = list[str] | Literal[_Keep.keep] | None


class InvalidAcl(InvalidInput):
    """An acl or a principal list that cannot be accepted (nothing was written)."""

    code = "invalid_acl"


def check_principals(values: Any, *, what: str, limit: int) -> list[str]:
    """Principals as given by a caller, checked and normalised (sorted, without duplicates).

    Raises:
        ValueError: not a list of 1..``limit`` non-empty strings of at most MAX_PRINCIPAL_CHARS printable
            characters, or one of them is the reserved ``PUBLIC`` token.
    """
    if not isinstance(values, list | tuple):
        raise ValueError(f"{what} must be a JSON array of strings")
    if not values and what == "acl":
        # An empty acl would hide the document from everyone, tenant included: almost surely a bug in
        # the caller, and `null` already says "readable by the tenant".
        raise ValueError("acl must name at least one principal (null makes the document readable by the tenant)")
    if len(values) > limit:
        raise ValueError(f"{what} holds at most {limit} principals, got {len(values)}")
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{what} entries must be strings, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{what} entries must be non-empty strings")
        if len(value) > MAX_PRINCIPAL_CHARS:
            raise ValueError(f"{what} entries are at most {MAX_PRINCIPAL_CHARS} characters, got {len(value)}")
        if value != value.strip() or not value.isprintable():
            raise ValueError(f"{what} entry {value[:40]!r} has surrounding spaces or control characters")
        if value == PUBLIC:
            raise ValueError(f"{what} cannot contain {PUBLIC!r}: it is reserved for public documents")
    return sorted(set(values))


def validate_acl(value: Any, *, doc_id: str | None = None) -> list[str] | None:
    """A caller-given acl (``None``: public), normalised.

    Raises:
        InvalidAcl: see ``check_principals``.
    """
    if value is None:
        return None
    try:
        return check_principals(value, what="acl", limit=MAX_ACL_PRINCIPALS)
    except ValueError as e:
        raise InvalidAcl(str(e), doc_id=doc_id) from e


def parse_acl_text(text: str | None, *, doc_id: str | None = None) -> AclArg:
    """An acl given as JSON text (an upload's form field, an S3 object's metadata): KEEP when absent or
    blank, else the validated acl (JSON null: None, readable by the tenant).

    Raises:
        InvalidAcl: not JSON, or not a valid acl.
    """
    if text is None or not text.strip():
        return KEEP
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidAcl(f"acl is not valid JSON: {e.msg}", doc_id=doc_id) from e
    return validate_acl(parsed, doc_id=doc_id)


def _acl(value: list[str]) -> list[str]:
    return check_principals(value, what="acl", limit=MAX_ACL_PRINCIPALS)


def _principals(value: list[str]) -> list[str]:
    return check_principals(value, what="principals", limit=MAX_QUERY_PRINCIPALS)


# pydantic field types for models at the boundaries (requests, change events).
AclList = Annotated[list[str], AfterValidator(_acl)]
PrincipalList = Annotated[list[str], AfterValidator(_principals)]


def stored_acl(acl: Sequence[str] | None) -> list[str]:
    """What a vector store keeps for a document's acl: the acl, or ``[PUBLIC]`` for a public document."""
    return list(acl) if acl else [PUBLIC]


def readers(principals: Sequence[str]) -> list[str]:
    """The acl entries a caller with ``principals`` may read: theirs, and ``PUBLIC``."""
    return sorted({*principals, PUBLIC})


def readable(acl: Sequence[str] | None, principals: Sequence[str]) -> bool:
    """Whether a caller with ``principals`` may read a document with ``acl`` (the check on gold rows:
    as_of search and hydration; the stores run the same test as a filter)."""
    return not acl or not set(acl).isdisjoint(principals)
