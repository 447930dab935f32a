"""rag/context, stats, metrics and data products over the in-process API (inline processing, no broker)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.client import DoclakeClient
from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.settings import Settings
from tests.steps import process_one


@pytest.fixture()
def api(settings: Settings, embedder: Embedder) -> Iterator[DoclakeClient]:
    holder: dict[str, TestClient] = {}

    def enqueue(tenant: str, doc_id: str, version: int) -> None:
        rt = holder["c"].app.state.runtime  # type: ignore[attr-defined]
        process_one(rt, tenant, doc_id, version)

    with TestClient(create_app(settings, enqueue=enqueue)) as c:
        holder["c"] = c
        yield DoclakeClient(http=c)


def _sample(text: str, name: str) -> float:
    """A sample's value from the exposition text (0 when absent)."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, flags=re.M)
    return float(match.group(1)) if match else 0.0


def test_rag_context_route_matches_the_typed_client(api: DoclakeClient) -> None:
    api.upload(b"# Backups\n\nNightly backups are kept for thirty days.", filename="b.md", doc_id="backups")
    api.upload(b"# Paging\n\nPages are acknowledged within five minutes.", filename="p.md", doc_id="paging")
    ctx = api.rag_context("how long are backups kept?", max_tokens=200)
    assert ctx.citations[0].doc_id == "backups" and ctx.citations[0].n == 1
    assert ctx.context.startswith("[1] b.md\n") and ctx.tokens <= 200
    assert ctx.context[ctx.citations[0].context_start : ctx.citations[0].context_end].startswith("Backups")
    assert api.rag_context("backups", max_tokens=200, filter={"team": "x"}).citations == []
    bad = api._http.post("/v1/rag/context", json={"question": "x", "max_tokens": 2})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_stats_and_metrics_follow_documents(api: DoclakeClient) -> None:
    before = api.metrics()
    assert _sample(before, 'doclake_documents{status="indexed"}') == 0
    api.upload(b"# Disk\n\nUse du -sh to find large folders.", filename="disk.md", doc_id="disk")
    api.upload(b"%PDF-1.7 not really", filename="broken.pdf", doc_id="broken")
    api.search("large folders")
    stats = api.stats()
    assert stats.documents["indexed"] == 1 and stats.documents["failed"] == 1 and stats.total == 2
    assert stats.chunks == stats.vectors == 1 and stats.last_ingested_at is not None
    assert stats.index_size_bytes > 0

    after = api.metrics()
    assert _sample(after, 'doclake_documents{status="indexed"}') == 1
    assert _sample(after, 'doclake_documents{status="failed"}') == 1
    assert _sample(after, "doclake_gold_chunks") == 1 and _sample(after, "doclake_vectors") == 1
    assert 'doclake_queue_depth{queue="extract"} 0.0' in after
    for name in (
        'doclake_chunks_total{source="embedded"}',
        'doclake_step_duration_seconds_count{step="extract"}',
        'doclake_step_duration_seconds_count{step="chunk_embed"}',
        'doclake_step_outcomes_total{state="failed",step="extract"}',
        'doclake_search_latency_seconds_count{kind="search"}',
    ):
        assert _sample(after, name) > _sample(before, name), name


def test_products_detect_a_vector_deleted_behind_the_lakes_back(
    api: DoclakeClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.upload(b"# One\n\nFirst note.\n\n# Two\n\nSecond note.", filename="n.md", doc_id="notes")
    listed = api.products(evaluate=True)
    assert listed.ok and {p.manifest.name for p in listed.products} == {"documents", "chunks"}
    chunks = next(p for p in listed.products if p.manifest.name == "chunks")
    assert chunks.manifest.owner and chunks.manifest.row_schema["title"] == "ChunkRecord"
    assert chunks.latest is not None and {r.check for r in chunks.latest.results} >= {
        "freshness",
        "no_chunk_without_vector",
        "vector_count_matches_gold",
    }

    monkeypatch.setenv("DOCLAKE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    assert runner.invoke(cli, ["products", "check"]).exit_code == 0

    # The breach: a vector vanishes from LanceDB directly, gold still has its chunk.
    import lancedb

    from pipelines.vectorstore.lance import LanceVectorStore

    victim = LanceVectorStore(settings.vectors_dir.resolve()).document_ids("default", "notes")[0]
    lancedb.connect(str(settings.vectors_dir.resolve())).open_table("chunks").delete(f"id = '{victim}'")

    result = runner.invoke(cli, ["products", "check"])
    assert result.exit_code == 1
    assert "BREACH chunks.no_chunk_without_vector: 1 gold chunks missing from the vector store" in result.output
    assert victim in result.output and "BREACH chunks.vector_count_matches_gold" in result.output
    served = api.products()  # the latest stored results, written by the CLI run
    assert served.ok is False
    chunks = next(p for p in served.products if p.manifest.name == "chunks")
    assert chunks.latest is not None and not chunks.latest.ok


def test_client_retries_429_and_503_with_backoff() -> None:
    answers = iter([429, 503, 200])
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        seen.append(status)
        if status != 200:
            return httpx.Response(status, headers={"Retry-After": "0"}, json={"title": "busy"})
        return httpx.Response(200, json={"results": []})

    http = httpx.Client(base_url="http://doclake", transport=httpx.MockTransport(handler))
    assert DoclakeClient(http=http).search("anything").results == []
    assert seen == [429, 503, 200]

    from app.client import DoclakeHTTPError, RetryPolicy

    http = httpx.Client(
        base_url="http://doclake", transport=httpx.MockTransport(lambda r: httpx.Response(503, json={"title": "down"}))
    )
    with pytest.raises(DoclakeHTTPError) as info:
        DoclakeClient(http=http, retry=RetryPolicy(max_retries=2, backoff_s=0.001)).stats()
    assert info.value.status == 503
