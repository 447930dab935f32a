"""Housekeeping: one tick re-enqueues stuck documents, compacts small Delta files and optimizes the
vector stores, whether `doclake up`'s thread or the `doclake sweep` service runs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lancedb

from pipelines.ingest.lifecycle import StuckDocument
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, RAW_OBJECTS, TableSpec
from pipelines.ops.housekeeping import COMPACT_MIN_FILES, housekeeping_tick
from pipelines.ops.tables import history
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.vectorstore.lance import LanceVectorStore
from tests.conftest import REPO
from tests.steps import process_one, register_one


def _indexed(rt: Runtime, doc_id: str, text: str) -> None:
    reg = register_one(rt, text.encode(), filename=f"{doc_id}.md", doc_id=doc_id)
    assert process_one(rt, "default", doc_id, reg.version).state == "done"


def _queued(rt: Runtime, doc_id: str) -> int:
    """A document registered but never sent to a worker: stuck in ``queued``."""
    return register_one(
        rt, f"Note {doc_id}: nobody queued it.".encode(), filename=f"{doc_id}.txt", doc_id=doc_id
    ).version


def _files(rt: Runtime, spec: TableSpec) -> int:
    return len(rt.lake.snapshot(spec).file_uris())


def _vector_table(rt: Runtime) -> tuple[int, int]:
    """The Lance table's fragments, and rows the full-text index has not folded in yet."""
    store = rt.vectors
    assert isinstance(store, LanceVectorStore)
    table: Any = lancedb.connect(store.path).open_table(store.table_name)
    [fts] = [i for i in table.list_indices() if i.index_type == "FTS"]
    return int(table.stats()["fragment_stats"]["num_fragments"]), int(fts.num_unindexed_rows)


def test_a_tick_requeues_stuck_documents_then_compacts_tables_and_vectors(runtime: Runtime) -> None:
    _indexed(runtime, "lighthouse", "# Lighthouse\n\nThe keeper lights the lamp at dusk.")
    _indexed(runtime, "ferry", "# Ferry\n\nThe winter ferry leaves at seven.")
    version = _queued(runtime, "stuck")
    assert _files(runtime, DOCUMENTS) == 3 and _vector_table(runtime) == (2, 2)

    requeued: list[StuckDocument] = []
    report = housekeeping_tick(runtime, requeued.append, older_than_s=0, min_files=2)
    assert requeued == [StuckDocument(tenant="default", doc_id="stuck", version=version, status="queued")]
    assert report.requeued == 1
    assert {DOCUMENTS.name, RAW_OBJECTS.name, CHUNKS.name} <= set(report.compacted)
    assert report.compacted[DOCUMENTS.name] == 3 and report.vector_stores == ["base"]
    for spec in (DOCUMENTS, RAW_OBJECTS, CHUNKS):
        assert _files(runtime, spec) == 1, spec.name
        assert history(runtime, spec.name, limit=1).entries[0].operation == "OPTIMIZE"
    assert _vector_table(runtime) == (1, 0)  # compacted, and the full-text index holds every row

    # Nothing stuck for an hour, nothing left to compact: the tick only optimizes the vector store.
    again = housekeeping_tick(runtime, requeued.append, older_than_s=3600, min_files=2)
    assert (again.requeued, again.compacted, len(requeued)) == (0, {}, 1)


def test_the_sweep_command_compacts_and_optimizes_as_well_as_it_requeues(runtime: Runtime, settings: Settings) -> None:
    """`doclake sweep` is the distributed profile's housekeeping service (docker-compose.yml)."""
    _indexed(runtime, "lighthouse", "# Lighthouse\n\nThe keeper lights the lamp at dusk.")
    _indexed(runtime, "ferry", "# Ferry\n\nThe winter ferry leaves at seven.")
    stuck = {f"s{i}": _queued(runtime, f"s{i}") for i in range(COMPACT_MIN_FILES)}
    assert _files(runtime, DOCUMENTS) > COMPACT_MIN_FILES and _vector_table(runtime) == (2, 2)

    # A process of its own, so that its Celery app sends to this lake's broker folder.
    env = {**os.environ, "DOCLAKE_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "sweep", "--older-than", "0"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"re-enqueued {len(stuck)} documents" in done.stdout
    assert "optimized 1 vector stores" in done.stdout
    for spec in (DOCUMENTS, RAW_OBJECTS):
        assert _files(runtime, spec) == 1, spec.name
        assert history(runtime, spec.name, limit=1).entries[0].operation == "OPTIMIZE"
    assert _vector_table(runtime) == (1, 0)
    # Each stuck document's chain waits in the extract queue, starting at extract.
    queued = sorted((settings.run_dir / "broker" / "queue").glob("*.extract.msg"))
    messages = [json.loads(p.read_text()) for p in queued]
    assert {m["headers"]["task"] for m in messages} == {"doclake.extract"}
    sent = {tuple(json.loads(base64.b64decode(m["body"]))[0]) for m in messages}
    assert sent == {("default", doc_id, version) for doc_id, version in stuck.items()}


def test_the_housekeeping_service_runs_at_low_priority(runtime: Runtime, settings: Settings) -> None:
    """`doclake sweep --every` (what `doclake up` runs as its housekeeping child) yields the cores."""
    _indexed(runtime, "lighthouse", "# Lighthouse\n\nThe keeper lights the lamp at dusk.")
    env = {
        **os.environ,
        "DOCLAKE_DATA_DIR": str(settings.data_dir),
        "PYTHONPATH": str(REPO),
        "DOCLAKE_HOUSEKEEPING_NICE": "7",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sweep", "--every", "0.2"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ticks = [line for line in (proc.stdout.readline() for _ in range(4)) if "optimized" in line]
        assert len(ticks) == 2  # two ticks printed: it keeps going
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[16]) == os.getpriority(os.PRIO_PROCESS, 0) + 7  # field 19 of stat: nice
    finally:
        proc.terminate()
        proc.wait(30)
