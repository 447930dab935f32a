"""What a micro-batch's events do to each document: the stream's per-document logic, free of Spark.

``plan_update`` runs wherever the engine plans (the driver, or an executor inside ``mapInArrow``): it
reads the document's current silver row, folds the batch's events for the document onto it (newer
versions only), and builds the new silver row (a ``SilverRow``) and the document's gold rows with
``pipelines.ingest.plan.plan_chunks`` — the same chunking and embedding-cache code as the Celery path.
It writes nothing; the engine hands the rows to the lakehouse writer. ``plan_documents`` turns the
plans of a batch into PLAN_SCHEMA rows, the interchange both engines carry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from pipelines.contracts.documents import DocumentStatus, ExtractedDocument
from pipelines.contracts.ids import sha256_hex
from pipelines.contracts.rows import SilverRow
from pipelines.contracts.updates import DocumentUpdate, UpdateOp
from pipelines.errors import DocLakeError
from pipelines.ingest.plan import PlanRequest, plan_chunks, stored_document, text_document
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.runtime import Runtime

__all__ = ["PLAN_SCHEMA", "UpdatePlan", "plan_documents", "plan_update"]

Action = Literal["apply", "mirror", "skip", "error"]

# One row per document of the batch (the new silver row, its gold rows, what the driver must do),
# plus one ``error`` row per event that could not apply.
PLAN_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("op", pa.string()),
        pa.field("action", pa.string()),
        pa.field("plan_error", pa.string()),  # silver has its own ``error`` column
        pa.field("payload", pa.string()),
        *[pa.field(f.name, f.type) for f in DOCUMENTS.schema],
        pa.field("gold", pa.list_(pa.struct([pa.field(f.name, f.type) for f in CHUNKS.schema]))),
    ]
)


class UpdatePlan(BaseModel):
    """The outcome of planning one document's events of a micro-batch.

    ``apply``: write ``silver`` and ``gold`` then mirror; ``mirror``: silver already holds the newest
    version (a batch re-run after a crash), only mirror; ``skip``: nothing newer than silver.
    ``silver`` is the new version's ``SilverRow.row()`` (empty unless ``apply``).
    ``rejected`` lists events that cannot apply, with the reason (they go to quarantine).
    """

    action: Action
    version: int = 0
    silver: dict[str, Any] = Field(default_factory=dict)
    gold: list[dict[str, Any]] = Field(default_factory=list)
    rejected: list[tuple[str, str]] = Field(default_factory=list)


def _updated(row: SilverRow, **changes: Any) -> SilverRow:
    return SilverRow.model_validate({**row.row(), **changes})


def _upserted(state: SilverRow | None, event: DocumentUpdate, document: ExtractedDocument, now: datetime) -> SilverRow:
    """The version an upsert makes: the event's text, the document's identity and first arrival kept."""
    assert event.text is not None  # the contract requires it for upserts
    alive = state is not None and state.status != DocumentStatus.deleted
    kept = json.loads(state.metadata_json or "{}") if state is not None and alive else {}
    metadata = event.metadata if event.metadata is not None else kept
    # Like metadata, the acl is kept unless the event says otherwise: an edit never makes a document public.
    acl = event.acl if event.sets_acl else (state.acl if state is not None and alive else None)
    data = event.text.encode("utf-8")
    return SilverRow(
        tenant=event.tenant,
        doc_id=event.doc_id,
        version=event.version,
        status=DocumentStatus.embedding,
        filename=state.filename if state is not None else None,
        format=document.format.value,
        mime=document.mime,
        source_uri=event.source_uri,
        content_sha256=sha256_hex(data),
        size_bytes=len(data),
        text=document.text,
        elements_json=json.dumps([e.model_dump(mode="json") for e in document.elements]),
        page_count=None,
        page_errors_json="[]",
        pages_json="[]",
        # An attachment updated by an event stays linked to its container (text events carry no attachments).
        parent_doc_id=state.parent_doc_id if state is not None and alive else None,
        attachment_errors_json="[]",
        metadata_json=json.dumps(metadata, sort_keys=True),
        acl=acl,
        created_at=state.created_at if state is not None else now,
    )


def plan_update(rt: Runtime, events: list[DocumentUpdate]) -> UpdatePlan:
    """Fold one document's events of a batch onto its silver row and build the resulting rows.

    Events are taken in version order (arrival order among equal versions) and each one newer than
    the state so far is applied to it
    (an upsert replaces text, a patch merges metadata keys, a delete makes a tombstone), so the
    newest version wins without losing what a batch's earlier events contributed (an upsert and
    the patch after it). Only the final state is chunked and embedded, reusing gold's vectors.
    """
    # Stable sort on version alone: events of equal version keep their arrival order, so the first
    # one applies and the rest are ignored as duplicates (a random tie-break would make it a coin toss).
    ordered = sorted(events, key=lambda e: e.version)
    first, newest = ordered[0], ordered[-1]
    current = get_document(rt.lake, first.tenant, first.doc_id, with_text=True)
    if current is not None and current["version"] >= newest.version:
        # Equal version: this batch already committed silver before a crash; re-mirroring is harmless.
        settled = current["status"] in (DocumentStatus.embedding, DocumentStatus.indexed, DocumentStatus.deleted)
        if current["version"] == newest.version and settled:
            return UpdatePlan(action="mirror", version=newest.version)
        return UpdatePlan(action="skip", version=current["version"])
    state = SilverRow.model_validate(current) if current is not None else None
    document: ExtractedDocument | None = None
    rejected: list[tuple[str, str]] = []
    now = datetime.now(UTC)
    for event in ordered:
        if state is not None and event.version <= state.version:
            continue  # a replay or an out-of-order event older than what it would build on
        if event.op == UpdateOp.delete:
            if state is not None:
                state, document = state.tombstone(event.version), None
        elif event.op == UpdateOp.patch_metadata:
            if state is None or state.status == DocumentStatus.deleted:
                rejected.append((event.event_id, f"not_found: document {event.doc_id} does not exist"))
                continue
            if document is None and state.status not in (DocumentStatus.indexed, DocumentStatus.embedding):
                status = state.status
                rejected.append((event.event_id, f"not_ready: document {event.doc_id} is {status}, not yet extracted"))
                continue
            merged = {**json.loads(state.metadata_json or "{}"), **(event.metadata or {})}
            acl = event.acl if event.sets_acl else state.acl
            state = _updated(state, version=event.version, metadata_json=json.dumps(merged, sort_keys=True), acl=acl)
        else:
            assert event.text is not None  # the contract requires it for upserts
            document = text_document(event.text)
            state = _upserted(state, event, document, now)
    if state is None or (current is not None and state.version == current["version"]):
        return UpdatePlan(action="skip", version=current["version"] if current else 0, rejected=rejected)
    if state.status == DocumentStatus.deleted:
        silver = _updated(state, updated_at=now)
        return UpdatePlan(action="apply", version=state.version, silver=silver.row(), rejected=rejected)
    index = rt.index()
    request = PlanRequest(
        document=document or stored_document(state.row()),
        doc_id=state.doc_id,
        version=state.version,
        filename=state.filename,
        metadata_json=state.metadata_json or "{}",
        acl=state.acl,
    )
    plan = plan_chunks(rt, state.tenant, [request], index=index)[state.doc_id]
    silver = _updated(
        state,
        status=DocumentStatus.embedding,
        error=None,
        chunks=len(plan.rows),
        chunks_embedded=plan.embedded,
        chunks_reused=plan.reused,
        model_id=index.model_id,
        chunker_id=index.chunker.config_id,
        created_at=state.created_at or now,
        updated_at=now,
    )
    gold = [{**r.row(), "updated_at": now} for r in plan.rows]
    return UpdatePlan(action="apply", version=state.version, silver=silver.row(), gold=gold, rejected=rejected)


def _error_row(event: DocumentUpdate, error: str, payload: str) -> dict[str, Any]:
    """The PLAN_SCHEMA row of an event that cannot apply (it goes to quarantine with ``error``)."""
    return {
        "tenant": event.tenant,
        "doc_id": event.doc_id,
        "event_id": event.event_id,
        "op": event.op.value,
        "version": event.version,
        "action": "error",
        "plan_error": error,
        "payload": payload,
    }


def plan_documents(rt: Runtime, groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """PLAN_SCHEMA rows for documents' event groups (each a list of ``{seq, event_json, payload}``).

    One row per document (its action, the new silver row and gold rows), plus an ``error`` row per
    event that cannot apply. A document whose planning fails for good turns all of its events into
    error rows; a retryable failure raises, failing the batch before anything was committed.
    """
    rows: list[dict[str, Any]] = []
    for group in groups:
        payloads: dict[str, str] = {}
        events = []
        for item in sorted(group, key=lambda item: item["seq"]):
            event = DocumentUpdate.model_validate_json(item["event_json"])
            events.append(event)
            payloads[event.event_id] = item["payload"]
        newest = max(events, key=lambda e: (e.version, e.ts, e.event_id))
        key = {"tenant": newest.tenant, "doc_id": newest.doc_id}
        try:
            plan = plan_update(rt, events)
        except DocLakeError as e:
            if e.retryable:
                raise  # fail the batch: it is re-run, nothing was committed
            rows.extend(_error_row(ev, e.describe(), payloads[ev.event_id]) for ev in events)
            continue
        rows.append(
            {
                **plan.silver,
                **key,
                "event_id": newest.event_id,
                "op": newest.op.value,
                "version": plan.version,
                "action": plan.action,
                "payload": payloads[newest.event_id],
                "gold": plan.gold,
            }
        )
        by_id = {ev.event_id: ev for ev in events}
        rows.extend(_error_row(by_id[i], error, payloads[i]) for i, error in plan.rejected)
    return rows
