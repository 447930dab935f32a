"""Change events (DocumentUpdate): validation for the stream, and the producer side used by the API.

Nothing here imports Spark: the API writes events with delta-rs and the stream's executors validate
them with the same pydantic contract.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from pipelines.contracts.acl import KEEP, AclArg, validate_acl
from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.ids import MetadataValue, sha256_hex
from pipelines.contracts.updates import DocumentUpdate, UpdateOp
from pipelines.contracts.validate import validate_metadata
from pipelines.errors import DocLakeError, DocumentNotFound, InvalidInput
from pipelines.lakehouse.documents import get_children, get_document
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import UPDATES
from pipelines.lakehouse.writer import append_events, version_floors
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = [
    "ParsedEvent",
    "append_updates",
    "delete_event",
    "ensure_topic",
    "event_row",
    "parse_event",
    "patch_metadata",
    "publish_updates",
]


class ParsedEvent(BaseModel):
    """One raw payload after validation: the event, or the reason it is quarantined."""

    event: DocumentUpdate | None = None
    event_id: str
    error: str | None = None


def _short_error(e: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in e.errors()]
    return "invalid_event: " + "; ".join(parts)[:2000]


def parse_event(payload: str | bytes | None) -> ParsedEvent:
    """Validate a JSON payload against the DocumentUpdate contract.

    Rows of ``bronze.document_updates`` arrive as JSON with ``metadata_json`` and ``acl_json`` (string
    columns); Kafka messages carry ``metadata`` and ``acl`` as JSON values. Both are accepted. An event that cannot be
    identified gets a content-derived id, so its quarantine row is stable across replays.
    """
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else (payload or "")
    fallback_id = "q" + sha256_hex(text)[:31]
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as e:
        return ParsedEvent(event_id=fallback_id, error=f"invalid_event: not JSON: {e.msg}")
    if not isinstance(data, dict):
        return ParsedEvent(event_id=fallback_id, error="invalid_event: not a JSON object")
    given = data.get("event_id")
    event_id: str = given if isinstance(given, str) and given else fallback_id
    for column, field in (("metadata_json", "metadata"), ("acl_json", "acl")):
        if column in data:
            raw = data.pop(column)
            if raw is not None:  # a null acl_json means "not given"; the JSON text "null" clears the acl
                try:
                    data[field] = json.loads(raw)
                except (TypeError, json.JSONDecodeError):
                    return ParsedEvent(event_id=event_id, error=f"invalid_event: {column} is not valid JSON")
    try:
        return ParsedEvent(event=DocumentUpdate.model_validate(data), event_id=event_id)
    except ValidationError as e:
        return ParsedEvent(event_id=event_id, error=_short_error(e))


def event_row(event: DocumentUpdate) -> dict[str, Any]:
    """The bronze.document_updates row of an event."""
    return {
        "event_id": event.event_id,
        "tenant": event.tenant,
        "doc_id": event.doc_id,
        "op": event.op.value,
        "version": event.version,
        "text": event.text,
        "source_uri": event.source_uri,
        "metadata_json": None if event.metadata is None else json.dumps(event.metadata, sort_keys=True),
        "acl_json": json.dumps(event.acl) if event.sets_acl else None,
        "ts": event.ts,
        "received_at": datetime.now(UTC),
    }


def append_updates(lake: Lake, events: list[DocumentUpdate]) -> None:
    """Append events to bronze.document_updates, the embedded profile's stream source."""
    append_events(lake, [event_row(e) for e in events])


log = logging.getLogger(__name__)

_producers: dict[str, Any] = {}
_producers_lock = threading.Lock()


def publish_updates(settings: Settings, events: list[DocumentUpdate]) -> None:
    """Send events to the Kafka topic when the stream reads Kafka (``DOCLAKE_STREAM_SOURCE=kafka``).

    The bronze row stays the record (version floors read it); without this the stream, reading only
    the topic, would never see the API's own events. Keyed by doc_id: one document's events keep order.

    Raises:
        DocLakeError: (retryable) the broker did not acknowledge the events.
    """
    if settings.stream_source != "kafka" or not events:
        return
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        with _producers_lock:
            producer = _producers.get(settings.kafka_bootstrap_servers)
            if producer is None:
                producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", retries=3)
                _producers[settings.kafka_bootstrap_servers] = producer
        futures = [
            producer.send(settings.kafka_topic, key=e.doc_id.encode(), value=e.to_json().encode()) for e in events
        ]
        for future in futures:
            future.get(timeout=30)
    except KafkaError as e:
        raise DocLakeError(
            f"the update event was recorded but Kafka ({settings.kafka_bootstrap_servers}) did not take it: {e}",
            doc_id=events[0].doc_id,
            retryable=True,
        ) from e


def ensure_topic(settings: Settings) -> None:
    """Create the Kafka topic of change events if it does not exist yet.

    Spark's Kafka source fails on a topic nobody has written to (UnknownTopicOrPartition), so a
    stream started on a fresh cluster exited until the first PATCH created the topic.

    Raises:
        DocLakeError: (retryable) the broker cannot be reached.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    except KafkaError as e:
        raise DocLakeError(f"Kafka ({settings.kafka_bootstrap_servers}) is unreachable: {e}", retryable=True) from e
    try:
        if settings.kafka_topic not in admin.list_topics():
            admin.create_topics([NewTopic(settings.kafka_topic, num_partitions=1, replication_factor=1)])
            log.info("created the Kafka topic %s", settings.kafka_topic)
    except TopicAlreadyExistsError:
        pass  # another process created it meanwhile
    finally:
        admin.close()


def _pending(lake: Lake, tenant: str, doc_id: str, version: int) -> dict[str, Any] | None:
    where = f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)} AND version = {int(version)}"
    rows = lake.read(UPDATES, where, columns=["op", "version", "metadata_json", "acl_json"]).to_pylist()
    return rows[0] if rows else None


def patch_metadata(
    rt: Runtime,
    tenant: str,
    doc_id: str,
    metadata: dict[str, Any] | None,
    *,
    acl: AclArg = KEEP,
) -> DocumentUpdate:
    """Queue a metadata and/or acl change for the stream: a ``patch_metadata`` event one version past the newest.

    The event carries the whole merged metadata (current + pending + these keys) and the whole acl
    (this one, else a pending event's, else the current one), so keeping only the latest event per
    document in a micro-batch loses nothing. ``acl=None`` makes the document readable by the tenant. An acl
    change is also queued for the document's attachments (extracted children, recursively), which always
    share their container's acl.

    Raises:
        DocumentNotFound: no such document, or it is deleted.
        InvalidInput: metadata is not a flat object of strings, numbers and booleans.
        InvalidAcl: the acl is not a valid list of principals.
    """
    patch = validate_metadata(metadata, doc_id=doc_id) if metadata is not None else {}
    new_acl = KEEP if acl is KEEP else validate_acl(acl, doc_id=doc_id)
    with rt.doc_lock(tenant, doc_id):
        row = get_document(rt.lake, tenant, doc_id)
        if row is None or row["status"] == DocumentStatus.deleted:
            raise DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
        base: dict[str, MetadataValue] = json.loads(row["metadata_json"] or "{}")
        base_acl: list[str] | None = row.get("acl")
        # The writer's rule for a new version: one past silver's and past any event still pending.
        floor = version_floors(rt.lake, tenant, {doc_id: row["version"]})[doc_id]
        pending = _pending(rt.lake, tenant, doc_id, floor) if floor > row["version"] else None
        if pending is not None:
            if pending["op"] == UpdateOp.delete:
                raise DocumentNotFound(f"document {doc_id} is being deleted", doc_id=doc_id)
            if pending["metadata_json"]:
                base = json.loads(pending["metadata_json"])
            if pending["acl_json"] is not None:
                base_acl = json.loads(pending["acl_json"])
        merged = validate_metadata({**base, **patch}, doc_id=doc_id)
        event = _new_event(
            tenant,
            doc_id,
            UpdateOp.patch_metadata,
            floor + 1,
            metadata=merged,
            acl=base_acl if new_acl is KEEP else new_acl,
        )
        append_updates(rt.lake, [event])
        publish_updates(rt.settings, [event])
        if new_acl is not KEEP:
            # Attachments are readable by whom their container is: an e-mail made private must not leave its
            # attachments public. Each child gets its own acl-only event (children's locks after the parent's).
            for child in get_children(rt.lake, tenant, [doc_id]).get(doc_id, []):
                if child["status"] in (DocumentStatus.indexed, DocumentStatus.embedding):
                    patch_metadata(rt, tenant, child["doc_id"], None, acl=new_acl)
    return event


def delete_event(rt: Runtime, tenant: str, doc_id: str, version: int) -> DocumentUpdate:
    """Record a delete that already happened synchronously (version = the tombstone's), for consumers."""
    event = _new_event(tenant, doc_id, UpdateOp.delete, version)
    append_updates(rt.lake, [event])
    try:
        publish_updates(rt.settings, [event])
    except DocLakeError as e:  # the delete itself is done; the event only informs consumers
        log.warning("%s", e)
    return event


def _new_event(
    tenant: str,
    doc_id: str,
    op: UpdateOp,
    version: int,
    *,
    metadata: dict[str, MetadataValue] | None = None,
    acl: AclArg = KEEP,
) -> DocumentUpdate:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "tenant": tenant,
        "doc_id": doc_id,
        "op": op,
        "version": version,
        "metadata": metadata,
        "ts": datetime.now(UTC),
    }
    if acl is not KEEP:  # an event without the key keeps the document's acl; null clears it
        fields["acl"] = acl
    try:
        return DocumentUpdate.model_validate(fields)
    except ValidationError as e:
        raise InvalidInput(_short_error(e), doc_id=doc_id) from e
