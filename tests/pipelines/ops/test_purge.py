"""Purge (right to be forgotten) against real Delta tables, LanceDB and the local object store.

The proof is not "the newest version has no row": it is that no file left on disk — Delta data
files, checkpoints, log entries, Lance fragments of any remaining version, raw objects — holds the
purged ids or text.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipelines.contracts.search import SearchQuery
from pipelines.errors import InvalidInput
from pipelines.lakehouse.documents import now_utc, rows_table
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import QUARANTINE, TABLES, UPDATES
from pipelines.ops.purge import PurgeParams, purge
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from tests.steps import process_one, register_one


def _text(marker: str, topic: str, version: int) -> bytes:
    return (
        f"# {topic} notes\n\nThe {topic} team records {marker} in revision {version}. "
        f"It explains how {topic} shipments are scheduled and audited every quarter.\n"
    ).encode()


def _ingest(rt: Runtime, tenant: str, doc_id: str, marker: str, topic: str) -> None:
    for version in (1, 2):
        reg = register_one(rt, _text(marker, topic, version), filename=f"{doc_id}.md", tenant=tenant, doc_id=doc_id)
        assert reg.version == version
        assert process_one(rt, tenant, doc_id, version).state == "done"
    # A change event and a quarantined event naming the document: both are personal data too.
    event = {
        "event_id": f"ev-{doc_id}",
        "tenant": tenant,
        "doc_id": doc_id,
        "op": "patch",
        "version": 9,
        "text": f"patched {marker}",
        "ts": now_utc(),
        "received_at": now_utc(),
    }
    rt.lake.append(UPDATES, rows_table(UPDATES, [event]))
    bad = {
        "event_id": f"q-{doc_id}",
        "source": "test",
        "tenant": tenant,
        "doc_id": doc_id,
        "payload": f'{{"text": "{marker}"}}',
        "error": "invalid",
        "quarantined_at": now_utc(),
    }
    rt.lake.append(QUARANTINE, rows_table(QUARANTINE, [bad]))


def _files_mentioning(root: Path, needles: list[str]) -> list[str]:
    """Every file under ``root`` whose content (parquet decoded, others raw) contains a needle."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            content = str(pq.read_table(path).to_pylist())
        else:
            content = path.read_bytes().decode("utf-8", errors="replace")
        if any(n in content for n in needles):
            hits.append(str(path.relative_to(root)))
    return hits


def _lance_versions_mentioning(rt: Runtime, needles: list[str]) -> list[str]:
    """Lance versions still readable that hold a needle (fragments may be encoded: read, not grep)."""
    import lancedb

    hits = []
    db = lancedb.connect(str(rt.settings.vectors_dir.resolve()))
    for name in db.list_tables().tables:
        table = db.open_table(name)
        for v in table.list_versions():
            table.checkout(v["version"])
            content = str(table.to_arrow().drop_columns(["vector"]).to_pylist())
            if any(n in content for n in needles):
                hits.append(f"{name}@{v['version']}")
        table.checkout_latest()  # type: ignore[no-untyped-call]
    return hits


def _rows(rt: Runtime, tenant: str, doc_id: str | None = None) -> dict[str, int]:
    where = f"tenant = {sql_quote(tenant)}" + (f" AND doc_id = {sql_quote(doc_id)}" if doc_id else "")
    specs = {**TABLES, **{i.gold.name: i.gold for i in rt.indexes()}}
    return {n: rt.lake.read(s, where).num_rows for n, s in specs.items() if "doc_id" in s.schema.names}


def test_purge_leaves_no_row_vector_or_object_behind_after_vacuum(runtime: Runtime) -> None:
    rt = runtime
    _ingest(rt, "acme", "secret-plan", "zebracorn7731", "turbine")
    _ingest(rt, "acme", "keep-me", "okapi4410", "harbour")
    _ingest(rt, "globex", "globex-memo", "quokka5582", "orchard")
    _ingest(rt, "globex", "globex-log", "narwhal9903", "bakery")
    lake_dir, objects_dir = rt.settings.lake_dir.resolve(), rt.settings.objects_dir.resolve()
    # The scanners must see the data before the purge, or their silence after it proves nothing.
    assert _files_mentioning(lake_dir, ["zebracorn7731"]) and _lance_versions_mentioning(rt, ["zebracorn7731"])
    assert _files_mentioning(objects_dir, ["zebracorn7731"])

    # One document of acme, first without the vacuum (as if interrupted): the rows are gone from the
    # newest version, but older files still hold them.
    report = purge(rt, PurgeParams(tenant="acme", doc_ids=["secret-plan", "never-existed"], vacuum=False))
    assert report.doc_ids == ["secret-plan"]
    assert report.rows_removed["silver.documents"] == 1 and report.rows_removed["bronze.raw_objects"] == 2
    assert report.rows_removed["bronze.document_updates"] == 1 and report.rows_removed["bronze.quarantine"] == 1
    assert report.rows_removed["gold.chunks"] >= 1 and report.vectors_removed == report.rows_removed["gold.chunks"]
    assert report.objects_removed == 2 and report.files_vacuumed == {} and report.time_travel_ended == []
    assert sum(_rows(rt, "acme", "secret-plan").values()) == 0
    assert _files_mentioning(lake_dir, ["zebracorn7731"]) and _lance_versions_mentioning(rt, ["zebracorn7731"])
    # Running it again finds nothing left to delete, and still erases the old files.
    report = purge(rt, PurgeParams(tenant="acme", doc_ids=["secret-plan"]))
    assert report.doc_ids == [] and sum(report.rows_removed.values()) == 0
    assert report.files_vacuumed["silver.documents"] >= 1 and report.files_vacuumed["gold.chunks"] >= 1
    assert {"silver.documents", "gold.chunks", "bronze.raw_objects"} <= set(report.time_travel_ended)
    assert rt.vectors.document_ids("acme", "secret-plan") == []
    assert not (objects_dir / "raw" / "acme" / "secret-plan").exists()
    assert _files_mentioning(lake_dir, ["zebracorn7731", "secret-plan"]) == []
    assert _lance_versions_mentioning(rt, ["zebracorn7731", "secret-plan"]) == []
    assert _files_mentioning(objects_dir, ["zebracorn7731"]) == []
    hits = search(rt, SearchQuery(query="harbour shipments", top_k=3), tenant="acme")
    assert hits and hits[0].doc_id == "keep-me"

    # The whole globex tenant.
    report = purge(rt, PurgeParams(tenant="globex"))
    assert report.whole_tenant and report.doc_ids == ["globex-log", "globex-memo"]
    assert report.objects_removed == 4 and report.vectors_removed >= 2
    assert sum(_rows(rt, "globex").values()) == 0 and rt.vectors.count("globex") == 0
    assert not (objects_dir / "raw" / "globex").exists()
    needles = ["quokka5582", "narwhal9903", "globex"]
    assert _files_mentioning(lake_dir, needles) == []
    assert _lance_versions_mentioning(rt, needles) == []
    assert search(rt, SearchQuery(query="orchard shipments"), tenant="globex") == []

    # acme's other document is untouched and still found.
    assert _rows(rt, "acme", "keep-me")["silver.documents"] == 1
    assert _files_mentioning(lake_dir, ["okapi4410"]) and _files_mentioning(objects_dir, ["okapi4410"])
    hits = search(rt, SearchQuery(query="harbour shipments audited", top_k=3), tenant="acme")
    assert hits and hits[0].doc_id == "keep-me" and "okapi4410" in hits[0].text

    # Purging what is gone is not an error.
    again = purge(rt, PurgeParams(tenant="acme", doc_ids=["secret-plan"]))
    assert again.doc_ids == [] and again.vectors_removed == 0 and sum(again.rows_removed.values()) == 0
    assert search(rt, SearchQuery(query="harbour shipments"), tenant="acme")[0].doc_id == "keep-me"


def test_purge_refuses_an_empty_target(runtime: Runtime) -> None:
    with pytest.raises(ValidationError):
        PurgeParams(tenant="  ")
    with pytest.raises(ValidationError):
        PurgeParams(tenant="acme", doc_ids=[])
    with pytest.raises(InvalidInput):
        purge(runtime, PurgeParams.model_construct(tenant="acme", doc_ids=[], vacuum=True))
