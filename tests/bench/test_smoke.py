"""Each bench script runs end to end on a tiny input, so the scripts do not rot. No timing assertions."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import SHARED, markdown_table, multipage_pdf, percentile

SCIFACT = SHARED / "benchmarks" / "scifact"
needs_scifact = pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}")


def test_helpers() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert percentile([], 50) == 0.0
    assert markdown_table(["a", "b"], [[1, 0.5]]) == "| a | b |\n|---|---|\n| 1 | 0.5 |"


def test_step_seconds_sums_each_step_of_a_metrics_exposition() -> None:
    from bench.freshness import step_seconds

    exposition = "\n".join(
        [
            "# TYPE doclake_step_duration_seconds histogram",
            'doclake_step_duration_seconds_bucket{le="0.1",step="extract"} 1.0',
            'doclake_step_duration_seconds_sum{step="extract"} 0.5',
            'doclake_step_duration_seconds_count{step="extract"} 2.0',
            'doclake_step_duration_seconds_sum{step="mirror"} 0.25',
            'doclake_step_duration_seconds_count{step="mirror"} 3.0',
            'doclake_search_duration_seconds_sum{mode="dense"} 9.0',
        ]
    )
    assert step_seconds(exposition) == {"extract": (0.5, 2), "mirror": (0.25, 3)}


def test_multipage_pdf_has_its_pages(tmp_path: Path) -> None:
    from pypdf import PdfReader

    path = tmp_path / "ten.pdf"
    path.write_bytes(multipage_pdf(10, seed=3))
    reader = PdfReader(path)
    assert len(reader.pages) == 10
    assert "seed3page9" in (reader.pages[9].extract_text() or "")


@needs_scifact
def test_scifact_loader_tiny() -> None:
    from bench.scifact import load_scifact

    data = load_scifact(SCIFACT, tiny=True)
    assert len(data.queries) == 5 and set(data.qrels) == set(data.queries)
    assert all(d in data.corpus for rel in data.qrels.values() for d in rel)
    full = load_scifact(SCIFACT)
    assert len(full.queries) == 300 and len(full.corpus) == 5183


@pytest.mark.slow
@needs_scifact
def test_scifact_direct_smoke() -> None:
    from bench import scifact

    results = scifact.main(["--tiny", "--direct", "--backend", "torch"])
    metrics = results["torch"]["metrics"]
    assert isinstance(metrics, dict) and set(metrics) == {"dense", "keyword", "hybrid", "default"}
    assert all(0.0 <= m["ndcg@10"] <= 1.0 for m in metrics.values())
    assert metrics["default"] == metrics["hybrid"]  # no mode on LanceDB is hybrid
    assert metrics["dense"]["ndcg@10"] > 0.5  # 5 easy queries over ~30 abstracts


@pytest.mark.slow
def test_embed_throughput_smoke() -> None:
    from bench import embed_throughput

    results = embed_throughput.main(["--tiny", "--backend", "torch", "--backend", "onnx-int8"])
    assert set(results) == {"torch", "onnx-int8"} and all(r["texts_per_s"] > 0 for r in results.values())


@pytest.mark.slow
def test_incremental_smoke() -> None:
    from bench import incremental

    rows = incremental.main(["--tiny"])["rows"]
    assert isinstance(rows, list)
    first, edited, full = rows
    assert first[2] == first[1]  # every chunk embedded the first time
    assert edited[2] == 1  # one section changed: one chunk re-embedded
    assert full[2] == full[1]


@pytest.mark.slow
def test_search_scale_smoke() -> None:
    from bench import search_scale

    result = search_scale.main(["--tiny", "--json"])
    keys = "rows recall_at_10 filtered_recall_at_10 ann_p50_ms ann_p99_ms hnswlib_p50_ms hnswlib_p99_ms"
    keys += " hnswlib_recall_at_10 exact_p50_ms api_p50_ms api_p99_ms fold_seconds_per_1k_rows"
    keys += " unindexed_search_p99_ms api_rss_mb"
    assert set(keys.split()) <= set(result)
    assert result["rows"] == 3000 and result["rows_after"] == 3000 + 400 + 600
    assert isinstance(result["recall_at_10"], float) and 0.5 <= result["recall_at_10"] <= 1.0
    assert result["index_after_fold"] == [3000, 400]  # the new rows became a delta, the base was kept


@pytest.mark.e2e
@pytest.mark.slow
@needs_scifact
def test_scifact_pipeline_smoke() -> None:
    from bench import scifact

    results = scifact.main(["--tiny", "--mode", "dense", "--mode", "hybrid"])
    run = results["torch"]
    assert run["documents"] == run["statuses"]["indexed"]  # type: ignore[index]
    assert set(run["metrics"]) == {"dense", "hybrid"}  # type: ignore[arg-type]


@pytest.mark.e2e
@pytest.mark.slow
def test_freshness_smoke() -> None:
    from bench import freshness

    # 3 uploads (a round of 2, then 1) after a 5-page scan, read by OCR meanwhile.
    result = freshness.main(["--tiny", "--inflight", "2", "--scans", "1"])
    assert result["timed"] == 3 and result["chunks_per_doc"] and result["latency"]["p50_ms"] > 0  # type: ignore[index]
    assert set(result["step_ms"]) == {"extract", "chunk_embed", "mirror"}  # type: ignore[arg-type]
    assert result["scan_latency"]["p50_ms"] > 0  # type: ignore[index]


@pytest.mark.e2e
@pytest.mark.slow
def test_stream_freshness_smoke() -> None:
    from bench import freshness

    result = freshness.main(["--tiny", "--stream"])
    by_op = result["by_op"]
    assert set(by_op) == {"upsert", "patch"} and all(v["p50_ms"] > 0 for v in by_op.values())  # type: ignore[union-attr]


@pytest.mark.e2e
@pytest.mark.slow
def test_ingest_throughput_smoke() -> None:
    from bench import ingest_throughput

    result = ingest_throughput.main(["--tiny"])
    assert result["chunks"] and result["pipeline_chunks_per_s"] > 0  # type: ignore[operator]
    cpu = result["cpu"]
    assert isinstance(cpu, dict) and cpu["by_role"]["embedding worker"] > 0  # the cores' accounting found it
    assert cpu["machine_busy_s"] >= cpu["by_role"]["embedding worker"]


@pytest.mark.integration
@pytest.mark.e2e
@pytest.mark.slow
def test_s3_lake_smoke() -> None:
    from bench import s3_lake

    result = s3_lake.main(["--tiny"])
    sides = result["sides"]
    assert isinstance(sides, dict) and set(sides) == {"local", "s3"}
    for side in sides.values():
        assert side["statuses"] == {"indexed": side["uploaded"]}  # both sides indexed everything
        assert side["chunks"] and side["chunks_per_s"] > 0 and side["latency"]["p50_ms"] > 0
        assert side["log_errors"] == []
    assert sides["local"]["local_tables"]  # the local lake is on disk ...
    assert result["s3_leftovers"] == [] and sides["s3"]["local_tables"] == []  # ... the S3 one is not
    on_s3 = result["on_s3"]
    assert isinstance(on_s3, dict) and on_s3["_delta_log"] and on_s3[".lance"] and on_s3["raw"]
    assert set(result["goals"]) == {"throughput_ratio", "s3_p95_ms"}  # type: ignore[arg-type]
    assert sides["s3"]["cpu"].by_role["S3 server (SeaweedFS)"] > 0  # the server's share of the cores, counted
    assert "S3 server (SeaweedFS)" not in sides["local"]["cpu"].by_role


needs_corpus = pytest.mark.skipif(not (SHARED / "corpus").is_dir(), reason=f"corpus not found at {SHARED}")


@needs_corpus
def test_ocr_accuracy_tiny() -> None:
    from bench.ocr_accuracy import main

    results = main(["--tiny"])
    assert set(results) == {(150, "sample"), (150, "clean")}
    at_150 = results[(150, "sample")]
    assert at_150["pages"] == 2 and 0.0 <= at_150["cer_median"] < 0.5 and at_150["pages_per_s_per_core"] > 0
    assert 0.0 <= at_150["cer_sorted_mean"] <= 1.0 and 0.0 <= at_150["bag_f1_mean"] <= 1.0
    assert results[(150, "clean")]["pages"] <= 2


def test_ocr_order_free_metrics() -> None:
    from bench.ocr_accuracy import bag_f1, is_running_text, sorted_words

    # The same words in another order: nothing to correct once sorted; a ligature is the letters it joins.
    assert sorted_words("beta alpha\ngamma") == sorted_words("gamma  alpha beta") == "alpha beta gamma"
    assert sorted_words("ﬁnd") == "find"
    assert bag_f1("gamma alpha beta", "alpha beta gamma") == 1.0
    assert bag_f1("alpha beta", "alpha beta gamma delta") == 2 * (1.0 * 0.5) / 1.5
    assert bag_f1("", "alpha") == 0.0
    prose = "The harbour crane was inspected on Tuesday by the team.\n" * 8
    form = "Name ____ Date ____\n1a 2,300 00\nSSN 123-45-6789\n" * 4
    assert is_running_text(prose) and not is_running_text(form) and not is_running_text(prose + form * 2)


@needs_corpus
def test_corpus_failures_tiny() -> None:
    from bench.corpus_failures import main

    result = main(["--tiny"])
    assert result["files"] == 6 and isinstance(result["failures"], list)
    assert result["failed"] == len(result["failures"])


def test_extract_sandbox_tiny() -> None:
    from bench.extract_sandbox import main

    results = main(["--tiny"])
    assert set(results) == {"fork", "server"}
    server, fork = results["server"], results["fork"]
    assert server["per_file_ms"].keys() == fork["per_file_ms"].keys() and server["per_file_ms"]
    assert server["memory"]["server"]["rss_kb"] > 0 and "server" not in fork["memory"]
    assert server["fork_warnings"] == 0  # children never fork from the process that used LanceDB
