"""A delete applied by the stream leaves every index, as a synchronous delete does (active, building, retired)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.indexes import IndexState
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.runtime import Runtime
from pipelines.stream.changes import append_updates
from tests.pipelines.stream.helpers import drain_delta_stream, event

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
