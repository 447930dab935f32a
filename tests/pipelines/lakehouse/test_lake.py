from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from deltalake import DeltaTable, QueryBuilder

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.chunks import cached_embeddings, doc_chunks
from pipelines.lakehouse.documents import get_document, record_raw_objects, to_record, update_document
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, RAW_OBJECTS
from pipelines.lakehouse.writer import delete_chunks, put_versions, replace_chunks
from pipelines.storage.locks import FileLocks


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake", locks=FileLocks(tmp_path / "locks"))
    lake.ensure_tables()
    return lake


def _doc_row(doc_id: str, version: int, status: str = "queued") -> dict[str, object]:
    return {"tenant": "t1", "doc_id": doc_id, "version": version, "status": status, "metadata_json": "{}"}


def test_tables_are_created_once_and_idempotently(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.ensure_tables()  # a second process starting up does the same
    for spec in (RAW_OBJECTS, DOCUMENTS, CHUNKS):
        dt = DeltaTable(lake.uri(spec))
        assert dt.version() == 0
        assert dt.protocol().min_reader_version == 1  # readable by Spark + delta-spark without features
        assert [f.name for f in dt.schema().fields] == spec.schema.names


def test_new_versions_win_and_old_ones_are_ignored(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    put_versions(lake, [_doc_row("a", 2)])
    put_versions(lake, [_doc_row("a", 1)])  # a late, older event
    row = get_document(lake, "t1", "a")
    assert row is not None and row["version"] == 2
    put_versions(lake, [_doc_row("a", 3)])
    row = get_document(lake, "t1", "a")
    assert row is not None and row["version"] == 3
    assert row["created_at"] < row["updated_at"] or row["created_at"] == row["updated_at"]


def test_update_only_touches_the_named_version(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    put_versions(lake, [_doc_row("a", 2)])
    assert not update_document(lake, "t1", "a", 1, status=DocumentStatus.failed.value, error="stale")
    assert update_document(lake, "t1", "a", 2, status=DocumentStatus.extracting.value)
    row = get_document(lake, "t1", "a")
    assert row is not None and row["status"] == "extracting" and row["error"] is None


def test_raw_objects_are_recorded_once(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for _ in range(2):
        record_raw_objects(lake, [{"tenant": "t1", "doc_id": "a", "version": 1, "uri": "file:///x", "sha256": "00"}])
    assert lake.read(RAW_OBJECTS).num_rows == 1


def _chunk(doc_id: str, chunk_id: str, sha: str, emb: list[float]) -> dict[str, object]:
    return {
        "tenant": "t1",
        "chunk_id": chunk_id,
        "doc_id": doc_id,
        "doc_version": 1,
        "ordinal": 0,
        "text": sha,
        "text_sha256": sha,
        "char_start": 0,
        "char_end": 1,
        "heading_path": [],
        "embedding": emb,
        "model_id": "m",
        "chunker_id": "c",
        "metadata_json": "{}",
    }


def test_replace_doc_chunks_upserts_and_removes_only_that_documents_stale_rows(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    replace_chunks(lake, CHUNKS, [("t1", "a")], [_chunk("a", "a1", "s1", [1.0]), _chunk("a", "a2", "s2", [2.0])])
    replace_chunks(lake, CHUNKS, [("t1", "b")], [_chunk("b", "b1", "s3", [3.0])])
    metrics = replace_chunks(
        lake, CHUNKS, [("t1", "a")], [_chunk("a", "a2", "s2", [2.0]), _chunk("a", "a3", "s4", [4.0])]
    )
    assert metrics["num_target_rows_deleted"] == 1
    assert sorted(doc_chunks(lake, "t1", "a").column("chunk_id").to_pylist()) == ["a2", "a3"]
    assert doc_chunks(lake, "t1", "b").num_rows == 1
    assert cached_embeddings(lake, "m", ["s3", "s1", "nope"], tenant="t1") == {"s3": [3.0]}
    assert cached_embeddings(lake, "m", ["s3"], tenant="t2") == {}  # never across tenants
    assert delete_chunks(lake, CHUNKS, [("t1", "a")]) == 2
    assert lake.read(CHUNKS).num_rows == 1


def _writer(root: str, locks: str, worker: int, n: int) -> None:
    lake = Lake(root, locks=FileLocks(Path(locks)))
    for i in range(n):
        put_versions(lake, [{**_doc_row(f"w{worker}-{i}", 1)}])
        update_document(lake, "t1", f"w{worker}-{i}", 1, status="indexed")


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(lake.root, str(tmp_path / "locks"), w, 8)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = lake.read(DOCUMENTS).to_pylist()
    assert len(rows) == 24
    assert {r["status"] for r in rows} == {"indexed"}


def test_concurrent_writers_without_file_locks_retry_conflicts(tmp_path: Path) -> None:
    # No shared lock dir: each process only has the optimistic-commit retry (the remote-lake path).
    lake = _lake(tmp_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(lake.root, str(tmp_path / f"own-locks-{w}"), w, 6)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert lake.read(DOCUMENTS).num_rows == 12


def test_compaction_merges_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    for i in range(12):
        put_versions(lake, [_doc_row(f"c{i}", 1)])
        update_document(lake, "t1", f"c{i}", 1, status="indexed")
    files_before = len(lake.table(DOCUMENTS).file_uris())
    assert lake.compact(DOCUMENTS, min_files=1000) is None  # below the threshold: untouched
    metrics = lake.compact(DOCUMENTS, min_files=4)
    assert metrics is not None and metrics["numFilesRemoved"] >= 4
    assert len(lake.table(DOCUMENTS).file_uris()) < files_before
    rows = lake.read(DOCUMENTS).to_pylist()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"indexed"}


def test_a_lake_made_by_an_older_doclake_gains_the_new_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    root = tmp_path / "lake"
    old_schema = pa.schema([f for f in DOCUMENTS.schema if f.name != "pages_json"])
    DeltaTable.create(str(root / DOCUMENTS.relpath), old_schema, name=DOCUMENTS.name)
    old = Lake(root, locks=FileLocks(tmp_path / "locks"))
    put_versions(old, [_doc_row("before", 1)])  # a row written before the upgrade

    lake = _lake(tmp_path)  # the upgraded doclake starting on the same lake
    dt = DeltaTable(lake.uri(DOCUMENTS))
    assert sorted(f.name for f in dt.schema().fields) == sorted(DOCUMENTS.schema.names)  # added at the end
    version = dt.version()
    lake.ensure_tables()  # nothing left to add: no new commit
    assert DeltaTable(lake.uri(DOCUMENTS)).version() == version

    row = get_document(lake, "t1", "before")
    assert row is not None and to_record(row).pages == []  # the old row reads with no page records
    update_document(lake, "t1", "before", 1, pages_json='[{"page": 1, "source": "ocr", "chars": 5}]')
    row = get_document(lake, "t1", "before")
    assert row is not None and [p.source.value for p in to_record(row).pages] == ["ocr"]


class _RecordingLocks:
    """Locks that span hosts (as Redis's do) and record what each commit takes, in order."""

    spans_hosts = True

    def __init__(self) -> None:
        self.taken: list[tuple[str, str]] = []

    @contextmanager
    def exclusive(self, name: str, *, timeout: float = 600.0) -> Iterator[None]:
        self.taken.append(("exclusive", name))
        yield

    @contextmanager
    def shared(self, name: str, *, timeout: float = 120.0) -> Iterator[None]:
        self.taken.append(("shared", name))
        yield


def test_commits_queue_in_the_tables_lane_when_locks_span_hosts(tmp_path: Path) -> None:
    locks = _RecordingLocks()
    lake = Lake(tmp_path / "lake", locks=locks)
    lake.ensure_tables()
    locks.taken.clear()
    put_versions(lake, [_doc_row("a", 1)])
    # the lane first (one committer at a time), then the table's shared lease (kept out by a vacuum)
    assert locks.taken == [("exclusive", "tables/silver.documents/commits"), ("shared", "tables/silver.documents")]
    locks.taken.clear()
    lake.maintain(DOCUMENTS, lambda dt: {"removed": dt.vacuum(retention_hours=0, enforce_retention_duration=False)})
    # a destructive operation holds the table itself, outside the lane
    assert locks.taken == [("exclusive", "tables/silver.documents")]
    assert get_document(lake, "t1", "a") is not None


def test_count_answers_from_file_statistics_and_scans_only_mixed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    assert lake.count(CHUNKS) == 0 and lake.count(CHUNKS, tenant="t1") == 0
    replace_chunks(lake, CHUNKS, [("t1", "a")], [_chunk("a", "a1", "s1", [1.0]), _chunk("a", "a2", "s2", [2.0])])
    t2 = {**_chunk("b", "b1", "s3", [3.0]), "tenant": "t2"}
    replace_chunks(lake, CHUNKS, [("t2", "b")], [t2])
    scans: list[str] = []
    original = QueryBuilder.execute

    def spy(self: QueryBuilder, sql: str) -> object:
        scans.append(sql)
        return original(self, sql)

    monkeypatch.setattr(QueryBuilder, "execute", spy)
    # One tenant per file: answered from the log alone.
    assert (lake.count(CHUNKS), lake.count(CHUNKS, tenant="t1"), lake.count(CHUNKS, tenant="t2")) == (3, 2, 1)
    assert lake.count(CHUNKS, tenant="t0") == 0  # below every file's min: skipped without a scan
    assert scans == []
    # A file holding both tenants: the statistics cannot split it, so the count scans, and stays exact.
    mixed = [_chunk("c", "c1", "s4", [4.0]), {**_chunk("d", "d1", "s5", [5.0]), "tenant": "t2"}]
    replace_chunks(lake, CHUNKS, [("t1", "c"), ("t2", "d")], mixed)
    assert lake.count(CHUNKS, tenant="t1") == 3 and lake.count(CHUNKS, tenant="t2") == 2
    assert len(scans) == 2
    assert lake.count(CHUNKS) == 5 == lake.read(CHUNKS).num_rows
    delete_chunks(lake, CHUNKS, [("t1", "a")])
    assert lake.count(CHUNKS, tenant="t1") == 1 == lake.read(CHUNKS, "tenant = 't1'").num_rows
