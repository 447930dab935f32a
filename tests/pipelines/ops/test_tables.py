"""Lake maintenance (vacuum guard, history, restore + re-mirror, local Z-ORDER) and its CLI, on real tables."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import cli
from pipelines.contracts.search import SearchQuery
from pipelines.errors import InvalidInput
from pipelines.ingest.lifecycle import delete_document
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, RAW_OBJECTS
from pipelines.ops.tables import (
    OptimizeParams,
    RestoreParams,
    VacuumParams,
    history,
    optimize,
    resolve_tables,
    restore,
    vacuum,
)
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.settings import Settings
from tests.steps import process_one, register_one


def _add(rt: Runtime, doc_id: str, text: str) -> int:
    reg = register_one(rt, text.encode(), filename=f"{doc_id}.md", doc_id=doc_id)
    assert process_one(rt, "default", doc_id, reg.version).state == "done"
    return reg.version


def _sorted_rows(table: pa.Table, key: list[str]) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(r[k]) for k in key))


def test_table_names_and_aliases(runtime: Runtime) -> None:
    names = [s.name for s in resolve_tables(runtime, ["silver", "gold", "raw", "base", "silver.documents"])]
    assert names == ["silver.documents", "gold.chunks", "bronze.raw_objects"]
    assert {s.name for s in resolve_tables(runtime, None)} >= {"meta.indexes", "bronze.quarantine", "gold.chunks"}
    with pytest.raises(InvalidInput, match=r"unknown table 'gold\.nope'"):
        resolve_tables(runtime, ["gold.nope"])


def test_vacuum_refuses_a_short_retention_unless_forced(runtime: Runtime) -> None:
    _add(runtime, "note", "# Note\n\nA first draft about glaciers.")
    _add(runtime, "note", "# Note\n\nA second draft about glaciers and fjords.")
    with pytest.raises(InvalidInput, match="under 168 h"):
        vacuum(runtime, VacuumParams(retention_hours=1))
    kept = vacuum(runtime, VacuumParams(tables=["silver"]))  # the default retention keeps everything recent
    assert kept.files == {"silver.documents": 0}
    dry = vacuum(runtime, VacuumParams(retention_hours=0, force=True, dry_run=True, tables=["silver", "gold"]))
    assert dry.dry_run and dry.files["silver.documents"] > 0
    assert runtime.lake.snapshot(DOCUMENTS, version=1).to_pyarrow_table().num_rows >= 1  # nothing removed yet
    done = vacuum(runtime, VacuumParams(retention_hours=0, force=True, tables=["silver"]))
    assert done.files["silver.documents"] == dry.files["silver.documents"]
    with pytest.raises(Exception):  # noqa: B017  (delta-rs: the version's files are gone)
        runtime.lake.snapshot(DOCUMENTS, version=1).to_pyarrow_table()
    assert get_document(runtime.lake, "default", "note")["version"] == 2  # type: ignore[index]


def test_history_lists_versions_newest_first(runtime: Runtime) -> None:
    _add(runtime, "h1", "# History\n\nOne entry about lighthouses.")
    h = history(runtime, "silver", limit=5)
    assert h.table == "silver.documents" and len(h.entries) == 5
    assert [e.version for e in h.entries] == list(range(h.version, h.version - 5, -1))
    assert {e.operation for e in h.entries} & {"MERGE", "WRITE"}
    assert all(e.timestamp is not None for e in h.entries)
    assert history(runtime, "gold").table == "gold.chunks"


def test_restore_brings_a_deleted_document_back_and_re_mirrors_it(runtime: Runtime) -> None:
    _add(runtime, "atlas", "# Atlas\n\nThe atlas maps every volcanic island of the southern archipelago.")
    _add(runtime, "other", "# Other\n\nA note on sourdough starters and bakery hydration.")
    query = SearchQuery(query="volcanic island archipelago", top_k=3)
    assert search(runtime, query)[0].doc_id == "atlas"
    time.sleep(0.05)
    before_delete = datetime.now(UTC)
    time.sleep(0.05)
    delete_document(runtime, "default", "atlas")
    assert all(h.doc_id != "atlas" for h in search(runtime, query))
    assert doc_chunks(runtime.lake, "default", "atlas").num_rows == 0

    report = restore(runtime, RestoreParams(table="all", timestamp=before_delete))
    assert [t.table for t in report.tables] == ["silver.documents", "gold.chunks"]
    assert all(t.version == t.previous_version + 1 for t in report.tables)
    rows = doc_chunks(runtime.lake, "default", "atlas").to_pylist()
    assert rows and {r["doc_version"] for r in rows} == {1}
    assert get_document(runtime.lake, "default", "atlas")["status"] == "indexed"  # type: ignore[index]
    (rec,) = report.reconciled
    assert rec["index_id"] == "base" and rec["missing"] == len(rows) and rec["repaired"]
    hits = search(runtime, query)
    assert hits[0].doc_id == "atlas" and hits[0].version == 1
    assert sorted(runtime.vectors.document_ids("default", "atlas")) == sorted(r["chunk_id"] for r in rows)

    # One table by version: bronze goes back to before "other" was registered.
    raw_v = [e.version for e in history(runtime, "raw").entries if e.operation != "CREATE TABLE"][-1]
    back = restore(runtime, RestoreParams(table="raw", version=raw_v))
    assert back.reconciled == [] and runtime.lake.read(RAW_OBJECTS).column("doc_id").to_pylist() == ["atlas"]

    with pytest.raises(ValidationError):
        RestoreParams(table="all", version=1)
    with pytest.raises(ValidationError):
        RestoreParams(table="silver")
    with pytest.raises(InvalidInput, match="cannot restore"):
        restore(runtime, RestoreParams(table="silver", version=999))
    # Once vacuumed, an old version cannot come back, and nothing is restored half-way.
    silver_now = runtime.lake.table(DOCUMENTS).version()
    optimize(runtime, OptimizeParams(engine="local", tables=["gold"], vectors=False))  # new files replace old
    vacuum(runtime, VacuumParams(retention_hours=0, force=True, tables=["gold"]))
    with pytest.raises(InvalidInput, match=r"gold\.chunks .* files were vacuumed"):
        restore(runtime, RestoreParams(table="all", timestamp=before_delete))
    assert runtime.lake.table(DOCUMENTS).version() == silver_now


def test_optimize_local_zorders_without_changing_data(runtime: Runtime) -> None:
    for i in range(4):
        _add(runtime, f"doc{i}", f"# Doc {i}\n\nSection about topic number {i} and its many details.")
    key = ["tenant", "chunk_id"]
    gold_before = _sorted_rows(runtime.lake.read(CHUNKS), key)
    silver_before = _sorted_rows(runtime.lake.read(DOCUMENTS), ["doc_id"])

    report = optimize(runtime, OptimizeParams(engine="local", tables=["silver", "gold", "raw"]))
    by_table = {t.table: t for t in report.tables}
    assert by_table["gold.chunks"].zordered and by_table["silver.documents"].zordered
    assert not by_table["bronze.raw_objects"].zordered  # bronze: compaction only
    for t in report.tables:
        assert t.files_before > 1 and t.files_after == 1, t
    assert report.vector_stores == ["base"]
    assert _sorted_rows(runtime.lake.read(CHUNKS), key) == gold_before
    assert _sorted_rows(runtime.lake.read(DOCUMENTS), ["doc_id"]) == silver_before
    ops = [e.operation for e in history(runtime, "gold", limit=1).entries]
    assert ops == ["OPTIMIZE"]
    assert search(runtime, SearchQuery(query="topic number 2", top_k=1))[0].doc_id == "doc2"


def test_cli_commands(runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _add(runtime, "cli-doc", "# CLI\n\nA document about tidal power stations.")
    monkeypatch.setenv("DOCLAKE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()

    result = runner.invoke(cli, ["history", "silver", "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    (silver,) = json.loads(result.stdout)
    assert silver["table"] == "silver.documents" and len(silver["entries"]) == 3

    result = runner.invoke(cli, ["vacuum", "--retention-hours", "1"])
    assert result.exit_code == 2 and "invalid_input" in result.stderr and "under 168 h" in result.stderr

    result = runner.invoke(cli, ["vacuum", "--retention-hours", "0", "--force", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dry_run"] is True

    result = runner.invoke(cli, ["restore", "nowhere", "--version", "1"])
    assert result.exit_code == 2 and "unknown table 'nowhere'" in result.stderr

    result = runner.invoke(cli, ["purge", "--tenant", "default"])
    assert result.exit_code == 2 and "--all-documents" in result.stderr

    result = runner.invoke(cli, ["purge", "--tenant", "default", "--doc-id", "cli-doc", "--json"])
    assert result.exit_code == 0, result.output
    purged = json.loads(result.stdout)
    assert purged["doc_ids"] == ["cli-doc"] and purged["rows_removed"]["silver.documents"] == 1
    assert get_document(runtime.lake, "default", "cli-doc") is None
