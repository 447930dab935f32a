"""S3 object events, normalised from every shape they arrive in, to one ``ObjectEvent``.

Shapes: the S3 event notification ``{"Records": [...]}`` (delivered straight to SQS, or by MinIO's
webhook), the same wrapped in an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``),
and EventBridge's ``{"source": "aws.s3", "detail-type": "Object Created", "detail": {...}}``.
S3 URL-encodes keys in Records (``+`` for a space, ``%2F`` …); EventBridge sends them as they are.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, Field

from pipelines.contracts.ids import sha256_hex
from pipelines.errors import InvalidInput
from pipelines.objectstore.store import parse_raw_key

__all__ = ["ObjectEvent", "PlannedAction", "doc_id_for_object", "parse_notification", "plan_action"]


class ObjectEvent(BaseModel):
    kind: Literal["created", "removed"]
    bucket: str
    key: str = Field(description="The object key, URL-decoded.")
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_name: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def dedup_key(self) -> str:
        """Same object, same content ⇒ same key: a multipart upload's two Created events collapse."""
        identity = self.version_id or self.etag or self.sequencer or ""
        return f"{self.kind}|{self.bucket}|{self.key}|{identity}"


def doc_id_for_object(bucket: str, key: str) -> str:
    """A stable document id per object location: overwriting the key makes a new version."""
    return "s" + sha256_hex(f"{bucket}/{key}")[:24]


def _kind(name: str) -> Literal["created", "removed"] | None:
    lowered = name.lower()
    if "objectcreated" in lowered.replace(" ", "") or lowered.startswith("object created"):
        return "created"
    if "objectremoved" in lowered.replace(" ", "") or lowered.startswith("object deleted"):
        return "removed"
    return None


def _from_record(record: dict[str, Any]) -> ObjectEvent | None:
    kind = _kind(str(record.get("eventName", "")))
    if kind is None:
        return None
    s3 = record.get("s3") or {}
    obj = s3.get("object") or {}
    bucket = (s3.get("bucket") or {}).get("name")
    if not bucket or "key" not in obj:
        raise InvalidInput("S3 record without bucket or key")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=unquote_plus(obj["key"]),
        size=obj.get("size"),
        etag=(obj.get("eTag") or obj.get("etag") or "").strip('"') or None,
        version_id=obj.get("versionId") if obj.get("versionId") not in (None, "null") else None,
        sequencer=obj.get("sequencer"),
        event_name=record.get("eventName", ""),
    )


def _from_eventbridge(body: dict[str, Any]) -> list[ObjectEvent]:
    kind = _kind(str(body.get("detail-type", "")))
    if kind is None:
        return []
    detail = body.get("detail") or {}
    obj = detail.get("object") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    if not bucket or "key" not in obj:
        raise InvalidInput("EventBridge S3 event without bucket or key")
    return [
        ObjectEvent(
            kind=kind,
            bucket=bucket,
            key=obj["key"],
            size=obj.get("size"),
            etag=(obj.get("etag") or obj.get("eTag") or "").strip('"') or None,
            # Unversioned buckets report the literal string "null".
            version_id=obj.get("version-id") if obj.get("version-id") not in (None, "null") else None,
            sequencer=obj.get("sequencer"),
            event_name=str(body.get("detail-type")),
        )
    ]


def parse_notification(body: str | bytes | dict[str, Any]) -> list[ObjectEvent]:
    """Every object event in one message; test events and other event types yield nothing.

    Raises:
        InvalidInput: the message is not JSON or not a shape we know.
    """
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"notification is not JSON: {e.msg}") from e
    if not isinstance(body, dict):
        raise InvalidInput("notification is not a JSON object")
    if body.get("Type") == "Notification" and "Message" in body:  # SNS envelope
        return parse_notification(body["Message"])
    if body.get("Event") == "s3:TestEvent":  # sent when a notification configuration is saved
        return []
    if "Records" in body:
        events = [_from_record(r) for r in body["Records"] if isinstance(r, dict)]
        return [e for e in events if e is not None]
    if body.get("source") == "aws.s3" and "detail" in body:
        return _from_eventbridge(body)
    raise InvalidInput("unknown notification shape (expected S3 Records, SNS or EventBridge)")


class PlannedAction(BaseModel):
    """What an object event asks of the pipeline."""

    action: Literal["register", "delete"]
    doc_id: str
    uri: str
    filename: str


def plan_action(event: ObjectEvent, *, watch_prefix: str) -> PlannedAction | None:
    """Register created objects under the watched prefix; delete the document of a removed one.

    Objects doclake wrote itself (API uploads, recognised by their key scheme) are already
    registered and are ignored, as is everything outside the prefix and "folder" placeholder keys.
    """
    if not event.key.startswith(watch_prefix) or event.key.endswith("/"):
        return None
    if parse_raw_key(event.key) is not None:
        return None
    filename = event.key.rsplit("/", 1)[-1]
    doc_id = doc_id_for_object(event.bucket, event.key)
    action: Literal["register", "delete"] = "register" if event.kind == "created" else "delete"
    return PlannedAction(action=action, doc_id=doc_id, uri=event.uri, filename=filename)
