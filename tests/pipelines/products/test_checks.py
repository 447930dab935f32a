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


def test_extraction_quality_is_a_service_level(runtime: Runtime) -> None:
    from PIL import Image

    from pipelines.extract.pdf import minimal_pdf
    from tests.scans import image_pdf, text_image

    scan = image_pdf([text_image(["Boiler room log, signed by the night porter."]), Image.new("L", (800, 400), 255)])
    done = register_one(runtime, scan, filename="scan.pdf", doc_id="scan")
    assert process_one(runtime, "default", "scan", done.version).state == "done"
    text = register_one(runtime, minimal_pdf("A born-digital page with enough letters."), filename="t.pdf", doc_id="t")
    assert process_one(runtime, "default", "t", text.version).state == "done"
    results = {c.check: c for r in evaluate(runtime) if r.product == "documents" for c in r.results}
    # Three pages, one of them blank: 2/3 yielded text, under the 98 % SLO; the blank page is named.
    pages = results["pages_with_text"]
    assert not pages.ok and pages.observed == round(2 / 3, 4) and pages.examples == ["scan p.2"]
    assert results["ocr_low_confidence"].ok and results["ocr_low_confidence"].observed == 0


def test_low_confidence_ocr_pages_are_listed() -> None:
    import json

    from pipelines.products.checks import _page_quality

    def doc(doc_id: str, confidences: list[float | None]) -> dict[str, object]:
        pages = [
            {"page": n, "source": "ocr" if c is not None else "text_layer", "chars": 100, "ocr_confidence": c}
            for n, c in enumerate(confidences, 1)
        ]
        return {"doc_id": doc_id, "page_count": len(pages), "pages_json": json.dumps(pages)}

    good = [doc(f"d{i}", [0.95, None, 0.9]) for i in range(30)]
    pages, low = _page_quality([*good, doc("fax", [0.31, 0.92])], MANIFESTS["documents"])
    assert pages.ok and pages.observed == 1.0
    assert low.ok and low.examples == ["fax p.1 (0.31)"]  # 1 of 62 OCR'd pages: within the 2 % budget
    pages, low = _page_quality([doc("fax", [0.31, 0.2, 0.92])], MANIFESTS["documents"])
    assert not low.ok and low.observed == 2
