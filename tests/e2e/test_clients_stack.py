"""The clients, metrics, stats, JSON logs and data-product checks against a real ``doclake up``.

One worker process (prefork child of a Celery parent) does the ingestion: every metric of ingestion
the API's /metrics shows came from another process, through the multiprocess folder.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lancedb
import pytest

from app.client import AsyncDoclakeClient, DoclakeClient
from pipelines.contracts.documents import DocumentStatus
from pipelines.vectorstore.lance import LanceVectorStore
from tests.e2e.stack import Stack, embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"DOCLAKE_LOG_FORMAT": "json"}
    with embedded_stack(tmp_path_factory.mktemp("clients"), env=env, args=("--concurrency", "1")) as running:
        yield running


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, flags=re.M)
    return float(match.group(1)) if match else 0.0


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=stack.env, cwd=REPO, capture_output=True, text=True, timeout=180
    )


def test_sync_client_round_trip_and_metrics_from_the_worker(stack: Stack, tmp_path: Path) -> None:
    with DoclakeClient(stack.url) as client:
        before = client.metrics()
        path = tmp_path / "rotation.md"
        path.write_text("# Rotation\n\nKeys rotate every ninety days.\n\n# Audit\n\nAuditors read the rotation log.")
        doc = client.upload_and_wait(path, doc_id="rotation", metadata={"team": "sec"}, timeout=300)
        assert (doc.status, doc.chunks, doc.metadata) == (DocumentStatus.indexed, 2, {"team": "sec"})
        assert client.status("rotation").version == doc.version

        hit = client.search("how often do keys rotate?", top_k=1, filter={"team": "sec"}).results[0]
        assert hit.doc_id == "rotation" and "ninety days" in hit.text
        ctx = client.rag_context("how often do keys rotate?", max_tokens=64)
        assert ctx.tokens <= 64 and ctx.citations[0].doc_id == "rotation" and ctx.citations[0].n == 1
        assert ctx.citations[0].filename == "rotation.md"

        after = client.metrics()
        for name in (
            'doclake_chunks_total{source="embedded"}',
            'doclake_step_duration_seconds_count{step="extract"}',
            'doclake_step_duration_seconds_count{step="chunk_embed"}',
            'doclake_step_outcomes_total{state="done",step="mirror"}',
            'doclake_search_latency_seconds_count{kind="search"}',
            'doclake_search_latency_seconds_count{kind="rag_context"}',
            'doclake_documents{status="indexed"}',
        ):
            assert _sample(after, name) > _sample(before, name), name
        assert 'doclake_queue_depth{queue="embed"}' in after

        # Same bytes again as a new version: every chunk reused, none embedded.
        embedded = _sample(after, 'doclake_chunks_total{source="embedded"}')
        path.write_text(path.read_text() + "\n\n# Audit\n\nAuditors read the rotation log.")
        v2 = client.upload_and_wait(path, doc_id="rotation", timeout=300)
        assert v2.chunks_reused >= 2
        latest = client.metrics()
        assert _sample(latest, 'doclake_chunks_total{source="reused"}') >= 2
        assert _sample(latest, 'doclake_chunks_total{source="embedded"}') == embedded + v2.chunks_embedded

        assert client.delete("rotation").status == DocumentStatus.deleted
        assert client.search("keys rotate", top_k=5).results == []

    # Every line the worker logged for that document is JSON with the task id.
    lines = [json.loads(line) for line in stack.log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("doc_id") == "rotation"]
    assert mine and all(line["task_id"] for line in mine)
    assert any(line["logger"].startswith("pipelines.ingest.") for line in mine)


def test_async_client(stack: Stack) -> None:
    async def run() -> tuple[str, list[int], str]:
        async with AsyncDoclakeClient(stack.url) as client:
            doc = await client.upload_and_wait(
                b"Async note: the cafeteria closes at three on Fridays.", filename="cafe.txt", timeout=300
            )
            ctx = await client.rag_context("when does the cafeteria close on Friday?", max_tokens=48)
            stats = await client.stats()
            assert stats.documents["indexed"] >= 1
            return doc.status.value, [c.n for c in ctx.citations], ctx.citations[0].doc_id

    status, numbers, cited = asyncio.run(run())
    assert status == "indexed" and numbers == [1] and cited.startswith("d")


def test_status_command_and_products_check_catch_an_injected_breach(stack: Stack) -> None:
    table = _cli(stack, "status")
    assert table.returncode == 0 and "documents indexed" in table.stdout and "index size" in table.stdout
    stats = json.loads(_cli(stack, "status", "--json").stdout)
    assert stats["documents"]["indexed"] >= 1 and stats["chunks"] == stats["vectors"] >= 1

    healthy = _cli(stack, "products", "check")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    # The breach: one vector removed from LanceDB directly, behind gold's back.
    victim = next(iter(LanceVectorStore(stack.data_dir / "vectors").iter_ids())).id
    lancedb.connect(str(stack.data_dir / "vectors")).open_table("chunks").delete(f"id = '{victim}'")

    breached = _cli(stack, "products", "check", "--json")
    assert breached.returncode == 1
    reports = {r["product"]: r for r in json.loads(breached.stdout)}
    failed = {r["check"] for r in reports["chunks"]["results"] if not r["ok"]}
    assert failed == {"no_chunk_without_vector", "vector_count_matches_gold"}
    with DoclakeClient(stack.url) as client:
        served = client.products()
    assert served.ok is False
