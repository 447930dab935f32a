"""A lake made before access control: its tables gain the acl columns, and what it held stays public."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.lakehouse.documents import get_document, rows_table
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, UPDATES, TableSpec
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.settings import Settings
from pipelines.storage.locks import FileLocks

NEW_COLUMNS = {DOCUMENTS.name: "acl", CHUNKS.name: "acl", UPDATES.name: "acl_json"}
TEXT = "Lighthouse keepers log the weather every four hours."


def _old(spec: TableSpec) -> pa.Schema:
    return pa.schema([f for f in spec.schema if f.name != NEW_COLUMNS.get(spec.name, "acl")])


def _create_old(root: Path, spec: TableSpec, rows: list[dict[str, object]] | None = None) -> None:
    DeltaTable.create(str(root / spec.relpath), _old(spec), name=spec.name)
    if rows:
        table = rows_table(spec, rows).select(_old(spec).names)
        write_deltalake(str(root / spec.relpath), table, mode="append")


def test_older_tables_gain_the_columns_and_their_rows_read_as_public(settings: Settings, embedder: Embedder) -> None:
    root = settings.data_dir / "lake"
    vector = embedder.encode([TEXT])[0]
    silver = {"tenant": "default", "doc_id": "old", "version": 1, "status": "indexed", "metadata_json": "{}"}
    gold = {
        "tenant": "default", "chunk_id": "c-old", "doc_id": "old", "doc_version": 1, "text": TEXT,
        "embedding": vector, "metadata_json": "{}", "char_start": 0, "char_end": len(TEXT),
    }  # fmt: skip
    _create_old(root, DOCUMENTS, [silver])
    _create_old(root, CHUNKS, [gold])
    _create_old(root, UPDATES)
    before = DeltaTable(str(root / CHUNKS.relpath)).version()

    rt = Runtime.from_settings(settings)  # the upgraded doclake starting on the old lake
    for spec, column in ((DOCUMENTS, "acl"), (CHUNKS, "acl"), (UPDATES, "acl_json")):
        assert column in {f.name for f in DeltaTable(rt.lake.uri(spec)).schema().fields}, spec.name
    row = get_document(rt.lake, "default", "old")
    assert row is not None and row["acl"] is None
    # as_of a version written before the column existed: everything was public then.
    hits = search(rt, SearchQuery(query="lighthouse weather log", as_of=before))
    assert [h.doc_id for h in hits] == ["old"]
    now = search(rt, SearchQuery(query="lighthouse weather log", as_of=rt.lake.snapshot(CHUNKS).version()))
    assert [h.doc_id for h in now] == ["old"]


def test_another_index_gold_table_is_brought_up_to_date_when_named(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    other = TableSpec("gold.chunks__i0123456789", CHUNKS.schema, CHUNKS.key)
    _create_old(root, other)
    lake = Lake(root, locks=FileLocks(tmp_path / "locks"))
    lake.ensure_tables()
    assert "acl" not in {f.name for f in DeltaTable(lake.uri(other)).schema().fields}  # not one of TABLES
    lake.ensure_tables(existing=[other, TableSpec("gold.chunks__iffffffffff", CHUNKS.schema, CHUNKS.key)])
    assert "acl" in {f.name for f in DeltaTable(lake.uri(other)).schema().fields}
    assert not lake.exists(TableSpec("gold.chunks__iffffffffff", CHUNKS.schema, CHUNKS.key))  # never created
