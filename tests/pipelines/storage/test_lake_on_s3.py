"""The whole lake on S3 with Redis locks: documents, operator commands and shared records work, two
runtimes with different data dirs see one lake, and nothing of it lands in a data dir."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.contracts.search import SearchQuery
from pipelines.errors import InvalidInput
from pipelines.extract.sandbox import start_server
from pipelines.ingest.lifecycle import delete_document
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.maintenance import vacuum_table
from pipelines.lakehouse.schemas import DOCUMENTS, TABLES
from pipelines.ops.jobs import JobRecord, JobStatus, JobStore
from pipelines.ops.purge import PurgeParams, purge
from pipelines.ops.tables import RestoreParams, restore
from pipelines.products.checks import load_latest, run_checks
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.serve.stats import collect_stats
from pipelines.settings import Settings
from pipelines.storage.location import delta_options
from tests.integration.servers import S3_KEY, S3_SECRET, seaweed_client
from tests.pipelines.storage.conftest import s3_settings_kwargs
from tests.steps import process_one, register_one

pytestmark = pytest.mark.integration

TEXT = b"Glaciers carve fjords over thousands of years while the ice creeps slowly downhill."


def _settings(endpoint: str, redis: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(**s3_settings_kwargs(endpoint, redis, prefix, data_dir))  # type: ignore[arg-type]


def _lake_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if "_delta_log" in p.parts or p.suffix == ".lance" or p.name == "jobs"]


def test_two_runtimes_with_their_own_data_dirs_share_one_lake(
    s3_endpoint: str, redis_url: str, aws_env: None, tmp_path: Path
) -> None:
    start_server()
    host_a = Runtime.from_settings(_settings(s3_endpoint, redis_url, "shared", tmp_path / "a"))
    host_b = Runtime.from_settings(_settings(s3_endpoint, redis_url, "shared", tmp_path / "b"))

    registered = register_one(host_a, TEXT, filename="glaciers.txt")
    assert process_one(host_a, "default", registered.doc_id, registered.version).state == "done"

    # B sees A's document, its chunks and vectors, and can search it.
    assert get_document(host_b.lake, "default", registered.doc_id)["status"] == "indexed"
    hits = search(host_b, SearchQuery(query="how are fjords formed", top_k=3), tenant="default")
    assert [h.doc_id for h in hits] == [registered.doc_id]
    assert collect_stats(host_b).index_size_bytes > 0

    # Shared records: a job saved by A is listed by B; checks run on B are served on A.
    now = datetime.now(UTC)
    record = JobRecord(
        job_id="abc123", kind="optimize", params={}, status=JobStatus.succeeded, created_at=now, heartbeat_at=now
    )
    JobStore(host_a.records).save(record)
    assert [j.job_id for j in JobStore(host_b.records).list()] == ["abc123"]
    run_checks(host_b)
    latest = load_latest(host_a)
    assert latest is not None and all(r.ok for r in latest)

    # A delete on B leaves search on A.
    delete_document(host_b, "default", registered.doc_id)
    assert search(host_a, SearchQuery(query="how are fjords formed", top_k=3), tenant="default") == []

    for data_dir in (tmp_path / "a", tmp_path / "b"):
        assert _lake_files(data_dir) == []
        assert not (data_dir / "lake").exists() and not (data_dir / "vectors").exists()


def test_purge_and_restore_check_objects_and_files_on_s3(
    s3_endpoint: str, redis_url: str, aws_env: None, tmp_path: Path
) -> None:
    start_server()
    rt = Runtime.from_settings(_settings(s3_endpoint, redis_url, "ops", tmp_path))
    kept = register_one(rt, b"Volcanoes erupt when magma rises through the crust.", filename="v.txt")
    gone = register_one(rt, TEXT, filename="g.txt")
    for r in (kept, gone):
        assert process_one(rt, "default", r.doc_id, r.version).state == "done"
    before = rt.lake.table(DOCUMENTS).version()

    report = purge(rt, PurgeParams(tenant="default", doc_ids=[gone.doc_id]))
    assert report.objects_removed == 1 and report.objects_missing == 0
    s3 = seaweed_client(s3_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="objects", Prefix="ops/").get("Contents", [])]
    assert keys and not [k for k in keys if gone.doc_id in k] and [k for k in keys if kept.doc_id in k]

    # The purge erased silver's history (retention-0 vacuum and log cleanup): the old version is gone.
    with pytest.raises(InvalidInput, match="cannot restore"):
        restore(rt, RestoreParams(table=DOCUMENTS.name, version=before, reconcile=False))
    assert get_document(rt.lake, "default", kept.doc_id)["status"] == "indexed"


def test_a_version_whose_files_are_there_restores_on_s3(
    s3_endpoint: str, redis_url: str, aws_env: None, tmp_path: Path
) -> None:
    start_server()
    rt = Runtime.from_settings(_settings(s3_endpoint, redis_url, "restore", tmp_path))
    r = register_one(rt, TEXT, filename="g.txt")
    before = rt.lake.table(DOCUMENTS).version()
    assert process_one(rt, "default", r.doc_id, r.version).state == "done"
    indexed = rt.lake.table(DOCUMENTS).version()
    report = restore(rt, RestoreParams(table=DOCUMENTS.name, version=before, reconcile=False))
    assert report.tables[0].version > indexed
    assert get_document(rt.lake, "default", r.doc_id)["status"] == "queued"

    # A retention-0 vacuum removes the indexed version's files from S3: restore checks each object
    # and refuses, instead of committing a table that points at missing files.
    assert vacuum_table(rt.lake, DOCUMENTS, retention_hours=0, enforce_retention=False) > 0
    with pytest.raises(InvalidInput, match="files were vacuumed"):
        restore(rt, RestoreParams(table=DOCUMENTS.name, version=indexed, reconcile=False))
    assert get_document(rt.lake, "default", r.doc_id)["status"] == "queued"


def _bootstrap(kwargs: dict[str, object]) -> None:
    import os

    os.environ.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    Runtime.from_settings(Settings(**kwargs))  # type: ignore[arg-type]


def test_many_processes_starting_at_once_create_each_table_once(
    s3_endpoint: str, redis_url: str, aws_env: None, tmp_path: Path
) -> None:
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_bootstrap, args=(s3_settings_kwargs(s3_endpoint, redis_url, "boot", tmp_path / str(i)),))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    settings = _settings(s3_endpoint, redis_url, "boot", tmp_path / "check")
    for spec in TABLES.values():
        dt = DeltaTable(f"{settings.lake_root}/{spec.relpath}", storage_options=delta_options(settings))
        creates = [h for h in dt.history() if h["operation"] == "CREATE TABLE"]
        assert len(creates) == 1, spec.name  # a second create would carry a new table id
