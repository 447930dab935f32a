"""The lakehouse writer: typed rows match the table schemas, and the version rules hold for every caller."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.rows import GoldRow, SilverRow
from pipelines.contracts.updates import DocumentUpdate, UpdateOp
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.lakehouse.writer import docs_predicate, put_versions, version_floors
from pipelines.stream.changes import append_updates


def test_typed_rows_have_exactly_the_table_columns() -> None:
    assert list(SilverRow.model_fields) == DOCUMENTS.schema.names
    assert list(GoldRow.model_fields) == CHUNKS.schema.names


def test_merge_conditions_come_from_the_table_keys() -> None:
    assert DOCUMENTS.merge_on == "t.tenant = s.tenant AND t.doc_id = s.doc_id"
    assert CHUNKS.merge_on == "t.tenant = s.tenant AND t.chunk_id = s.chunk_id"
    assert docs_predicate([]) == "false"
    assert docs_predicate([("b", "x"), ("a", "y'z"), ("a", "w")]) == (
        "(t.tenant = 'a' AND t.doc_id IN ('w', 'y''z')) OR (t.tenant = 'b' AND t.doc_id IN ('x'))"
    )


def test_a_tombstone_keeps_identity_and_drops_content() -> None:
    row = SilverRow(
        tenant="t", doc_id="d", version=3, status=DocumentStatus.indexed, text="secret", chunks=5, filename="f.md"
    )
    dead = row.tombstone(4)
    assert (dead.version, dead.status, dead.filename, dead.text, dead.chunks) == (4, "deleted", "f.md", None, 0)


def test_new_versions_go_above_pending_change_events(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.ensure_tables()
    put_versions(lake, [SilverRow(tenant="t", doc_id="a", version=2, status=DocumentStatus.indexed)])
    event = DocumentUpdate(
        event_id="e1",
        tenant="t",
        doc_id="a",
        op=UpdateOp.patch_metadata,
        version=5,
        metadata={"k": 1},
        ts=datetime.now(UTC),
    )
    append_updates(lake, [event])
    assert version_floors(lake, "t", {"a": 2, "new": 0}) == {"a": 5, "new": 0}
    # An older version never replaces a newer one, whoever writes it.
    put_versions(lake, [SilverRow(tenant="t", doc_id="a", version=1, status=DocumentStatus.queued)])
    row = get_document(lake, "t", "a")
    assert row is not None and (row["version"], row["status"]) == (2, "indexed")
