"""A delete applied by the stream leaves every index, as a synchronous delete does (active, building, retired),
and takes a container's attachments with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.ingest.runner import process_inline
from pipelines.lakehouse.documents import get_children, get_document, get_documents
from pipelines.lakehouse.indexes import IndexState
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.runtime import Runtime
from pipelines.stream.changes import append_updates
from tests.attachments import message
from tests.pipelines.stream.helpers import drain_delta_stream, event
from tests.steps import register_one

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

KETTLE = "The kettle descales with citric acid.\n\nRinse it twice before boiling water again."
BIKE = "Bicycle chains need oil every few hundred kilometres.\n\nWipe off the excess oil afterwards."


def _held(rt: Runtime, doc_id: str) -> dict[str, tuple[int, int]]:
    """index state → (gold rows, vectors) of the document in that index."""
    held = {}
    for index in rt.indexes():
        gold = rt.lake.read(index.gold, f"doc_id = '{doc_id}'", columns=["chunk_id"]).num_rows
        held[index.state.value] = (gold, len(list(rt.vectors_for(index).document_ids("default", doc_id))))
    return held


@pytest.mark.parametrize("driver_max", [200, 0], ids=["driver", "spark"])
def test_a_streamed_delete_leaves_every_index(
    spark: SparkSession, runtime: Runtime, tmp_path: Path, driver_max: int
) -> None:
    rt = runtime
    checkpoint = tmp_path / "checkpoint"
    append_updates(rt.lake, [event("kettle", "upsert", 1, text=KETTLE), event("bike", "upsert", 1, text=BIKE)])
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    # Three indexes hold both documents: the base one retired by a switch, the active one, and one
    # being built that has not been switched to.
    reindex(rt, ReindexParams(chunk_max_tokens=128, chunk_overlap_tokens=16))
    reindex(rt, ReindexParams(chunk_max_tokens=96, chunk_overlap_tokens=16, switch=False))
    assert sorted(i.state for i in rt.indexes()) == sorted([IndexState.active, IndexState.building, IndexState.retired])
    for doc_id in ("kettle", "bike"):
        assert all(gold > 0 and vectors == gold for gold, vectors in _held(rt, doc_id).values()), _held(rt, doc_id)

    append_updates(rt.lake, [event("kettle", "delete", 2)])
    drain_delta_stream(spark, rt, checkpoint, driver_max)
    kettle = get_document(rt.lake, "default", "kettle")
    assert kettle is not None and kettle["status"] == DocumentStatus.deleted and kettle["version"] == 2
    assert _held(rt, "kettle") == {"active": (0, 0), "building": (0, 0), "retired": (0, 0)}
    assert all(gold > 0 and vectors == gold for gold, vectors in _held(rt, "bike").values())


@pytest.mark.parametrize("driver_max", [200, 0], ids=["driver", "spark"])
def test_a_streamed_delete_of_an_email_deletes_its_attachments(
    spark: SparkSession, runtime: Runtime, tmp_path: Path, driver_max: int
) -> None:
    rt = runtime
    inner = message(
        "Heron sighting", "The violet heron nests by the old mill.", files=[("heron.txt", b"Heron census.")]
    )
    mail = message("Weekly ops", "Read the notes.", files=[("notes.txt", b"Nine copper kettles.")], messages=[inner])
    registered = register_one(rt, mail.as_bytes(), filename="weekly.eml")
    parent = registered.doc_id
    assert process_inline(rt, "default", {parent: registered.version})[parent].state == "done"
    children = get_children(rt.lake, "default", [parent])[parent]
    nested = [c["doc_id"] for c in children if c["filename"] == "Heron sighting.eml"]
    family = [c["doc_id"] for c in children] + [
        c["doc_id"] for c in get_children(rt.lake, "default", nested)[nested[0]]
    ]
    assert len(family) == 3 and all(_held(rt, d)["active"][1] > 0 for d in family)

    append_updates(rt.lake, [event(parent, "delete", registered.version + 1)])
    drain_delta_stream(spark, rt, tmp_path / "checkpoint", driver_max)
    rows = get_documents(rt.lake, "default", [parent, *family])
    assert {d: r["status"] for d, r in rows.items()} == dict.fromkeys([parent, *family], DocumentStatus.deleted)
    # Each attachment left search and gold, and its tombstone keeps the link (purge follows it).
    assert all(_held(rt, d) == {"active": (0, 0)} for d in family)
    assert all(rows[c["doc_id"]]["parent_doc_id"] == parent for c in children)
