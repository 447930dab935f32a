"""Data-product checks on a real lake: healthy is green, each kind of breach is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.lakehouse.schemas import CHUNKS
from pipelines.lakehouse.writer import delete_chunks
from pipelines.products.checks import CheckResult, ProductReport, evaluate, load_latest, run_checks
from pipelines.products.manifests import MANIFESTS
from pipelines.runtime import Runtime
from tests.steps import process_one, register_one


def _failed(reports: list[ProductReport], product: str) -> dict[str, CheckResult]:
    report = next(r for r in reports if r.product == product)
    return {r.check: r for r in report.results if not r.ok}


def test_manifests_carry_owner_schema_slo_and_checks() -> None:
    for name, manifest in MANIFESTS.items():
        assert manifest.owner.startswith("team:") and manifest.freshness_slo_s > 0
        assert manifest.row_schema["title"] == manifest.contract and manifest.row_schema["properties"]
        assert manifest.checks[0].name == "freshness", name


def test_healthy_lake_then_freshness_and_gold_breaches(runtime: Runtime) -> None:
    done = register_one(runtime, b"# Note\n\nThe vault opens at nine.", filename="n.md", doc_id="note")
    assert process_one(runtime, "default", "note", done.version).state == "done"
    reports = run_checks(runtime)
    assert all(r.ok for r in reports), [r.model_dump() for r in reports]
    latest = load_latest(runtime)
    assert latest is not None and [r.product for r in latest] == ["documents", "chunks"]

    # A version nobody processes: fresh now, a breach once the SLO has passed.
    register_one(runtime, b"Waiting in the queue.", filename="w.txt", doc_id="waiting")
    assert "freshness" not in _failed(evaluate(runtime), "documents")
    later = datetime.now(UTC) + timedelta(seconds=MANIFESTS["documents"].freshness_slo_s + 60)
    stale = _failed(evaluate(runtime, now=later), "documents")["freshness"]
    assert stale.examples == ["waiting (queued)"] and float(stale.observed) > 900

    # Gold loses an indexed document's chunks behind the pipeline's back.
    delete_chunks(runtime.lake, CHUNKS, [("default", "note")])
    reports = evaluate(runtime)
    assert set(_failed(reports, "documents")) == {"indexed_have_chunks", "chunk_counts_match"}
    assert set(_failed(reports, "chunks")) == {"no_vector_without_chunk", "vector_count_matches_gold"}
