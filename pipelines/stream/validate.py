"""The first steps of a micro-batch: validate raw payloads, then group the valid events per document.

Both engines run these functions: the driver engine on a collected list, the Spark engine inside
``mapInArrow`` (validation) with a Spark ``groupBy`` building the same groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from pipelines.stream.changes import parse_event

__all__ = ["VALIDATED_SCHEMA", "group_events", "validate_batches", "validated_row"]

# One row per raw payload: the parsed event's identity, or the error that sends it to quarantine.
VALIDATED_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("error", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("tenant", pa.string()),
        pa.field("doc_id", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("event_json", pa.string()),
    ]
)


def validated_row(payload: str | None) -> dict[str, Any]:
    """The VALIDATED_SCHEMA row of one raw payload."""
    parsed = parse_event(payload)
    event = parsed.event
    return {
        "event_id": parsed.event_id,
        "error": parsed.error,
        "payload": payload,
        "tenant": event.tenant if event else None,
        "doc_id": event.doc_id if event else None,
        "version": event.version if event else None,
        "ts": event.ts if event else None,
        "event_json": event.to_json() if event else None,
    }


def validate_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function: batches with a string column ``payload`` → VALIDATED_SCHEMA batches."""
    for batch in batches:
        rows = [validated_row(payload) for payload in batch.column("payload").to_pylist()]
        yield pa.RecordBatch.from_pylist(rows, schema=VALIDATED_SCHEMA)


def group_events(validated: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The valid events of each document, as ``{seq, event_json, payload}`` items (``seq``: arrival order).

    Among events of equal version the first to arrive is applied (see ``plan_update``), so ``seq``
    travels with each event; the Spark engine builds the same groups with ``collect_list``.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for seq, row in enumerate(validated):
        if row["error"] is None:
            item = {"seq": seq, "event_json": row["event_json"], "payload": row["payload"]}
            groups.setdefault((row["tenant"], row["doc_id"]), []).append(item)
    return list(groups.values())
