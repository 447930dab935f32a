"""The update stream end to end on the Delta source: events → silver, gold, vector store, search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import get_document, rows_table
from pipelines.lakehouse.schemas import QUARANTINE, UPDATES
from pipelines.runtime import Runtime
from pipelines.stream.changes import append_updates, event_row
from tests.pipelines.stream.helpers import assert_exactly_once, drain_delta_stream, event, search_docs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

KETTLE = "The kettle descales with citric acid.\n\nRinse it twice before boiling water again."
KETTLE_V2 = "The kettle descales with citric acid.\n\nNever put the kettle in the dishwasher."
BIKE = "Bicycle chains need oil every few hundred kilometres.\n\nWipe off the excess oil afterwards."


def _long(topic: str, n: int = 3) -> str:
    """Paragraphs long enough (~150 tokens) that each becomes its own chunk."""
    return "\n\n".join(
        " ".join(f"Part {p} sentence {i} explains how {topic} behaves in case {p * 100 + i}." for i in range(14))
        for p in range(n)
    )


# Each test runs on both engines: small batches committed by delta-rs on the driver, and Spark MERGEs.
ENGINES = pytest.mark.parametrize("driver_max", [200, 0], ids=["driver", "spark"])


@ENGINES
def test_events_become_searchable_and_replays_are_harmless(
    spark: SparkSession, runtime: Runtime, tmp_path: Path, driver_max: int
) -> None:
    rt = runtime
    checkpoint = tmp_path / "checkpoint"
    append_updates(
        rt.lake,
        [
            event("kettle", "upsert", 1, text=KETTLE, metadata={"room": "kitchen"}),
            event("bike", "upsert", 1, text=BIKE, metadata={"room": "garage"}),
        ],
    )
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    assert search_docs(rt, "how to descale a kettle")[0] == "kettle"
    assert set(search_docs(rt, "chain oil", room="garage")) == {"bike"}
    assert_exactly_once(rt)
    doc = get_document(rt.lake, "default", "kettle")
    assert doc is not None and doc["status"] == DocumentStatus.indexed and doc["version"] == 1

    # Out of order within a batch (v3 before v2), a duplicate of v1, a stale v1 patch, then a delete.
    append_updates(
        rt.lake,
        [
            event("kettle", "patch_metadata", 3, metadata={"room": "kitchen", "checked": True}),
            event("kettle", "upsert", 2, text=KETTLE_V2),
            event("kettle", "upsert", 1, text=KETTLE, metadata={"room": "kitchen"}),
            event("bike", "patch_metadata", 1, metadata={"room": "attic"}),
            event("bike", "delete", 2),
        ],
    )
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    kettle = get_document(rt.lake, "default", "kettle", with_text=True)
    assert kettle is not None and kettle["version"] == 3 and kettle["status"] == DocumentStatus.indexed
    # Folded in version order: v2's text, then v3's metadata on top; the stale v1 changed nothing.
    assert "dishwasher" in kettle["text"]
    assert json.loads(kettle["metadata_json"]) == {"room": "kitchen", "checked": True}
    assert (kettle["chunks_embedded"], kettle["chunks_reused"]) == (1, 0)  # one chunk, its text changed
    assert search_docs(rt, "kettle in the dishwasher", checked=True)[0] == "kettle"
    bike = get_document(rt.lake, "default", "bike")
    assert bike is not None and bike["status"] == DocumentStatus.deleted and bike["version"] == 2
    assert "bike" not in search_docs(rt, "bicycle chain oil")
    assert_exactly_once(rt)

    # An edit re-embeds only the chunk whose text changed; a replay of the whole log changes nothing.
    original, edited = _long("tidal currents"), _long("tidal currents").replace("case 205.", "case 205, at dusk.")
    append_updates(rt.lake, [event("tides", "upsert", 1, text=original)])
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    append_updates(rt.lake, [event("tides", "upsert", 2, text=edited)])
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    tides = get_document(rt.lake, "default", "tides")
    assert tides is not None and tides["version"] == 2 and tides["chunks"] == 3
    assert (tides["chunks_embedded"], tides["chunks_reused"]) == (1, 2)
    before = assert_exactly_once(rt)
    drain_delta_stream(
        spark, rt, tmp_path / "fresh-checkpoint", driver_max
    )  # every event again, from the start of the log
    assert assert_exactly_once(rt) == before
    assert get_document(rt.lake, "default", "kettle")["version"] == 3  # type: ignore[index]


@ENGINES
def test_invalid_events_land_in_quarantine(
    spark: SparkSession, runtime: Runtime, tmp_path: Path, driver_max: int
) -> None:
    rt = runtime
    good = event("note", "upsert", 1, text="A note about quarantine.")
    bad_rows = [
        {**event_row(good), "event_id": "bad-op", "op": "frobnicate"},
        {**event_row(good), "event_id": "bad-version", "version": 0},
        {**event_row(good), "event_id": "no-text", "text": None},
        {**event_row(good), "event_id": "bad-meta", "metadata_json": "{not json"},
        {**event_row(good), "event_id": "bad-doc", "doc_id": "../etc/passwd"},
    ]
    rt.lake.append(UPDATES, rows_table(UPDATES, bad_rows))
    ghost = event("ghost", "patch_metadata", 5, metadata={"a": 1})
    append_updates(rt.lake, [good, ghost])
    drain_delta_stream(spark, rt, tmp_path / "checkpoint", driver_max)
    quarantined = {r["event_id"]: r for r in rt.lake.read(QUARANTINE).to_pylist()}
    assert set(quarantined) == {"bad-op", "bad-version", "no-text", "bad-meta", "bad-doc", ghost.event_id}
    assert any(r["doc_id"] == "ghost" and "not_found" in r["error"] for r in quarantined.values())
    assert "op" in quarantined["bad-op"]["error"] and "version" in quarantined["bad-version"]["error"]
    assert all(r["payload"] and r["source"] == "stream:delta" for r in quarantined.values())
    assert search_docs(rt, "quarantine note")[0] == "note"
