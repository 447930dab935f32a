"""Retrieval quality on SciFact (BEIR): nDCG@10 and Recall@10 of dense, keyword and hybrid search.

Each abstract (title + text) becomes one document; the 300 test claims are asked through search
(top 100 chunks), documents are ranked by their best chunk and scored against qrels/test.tsv.
Published anchor for all-MiniLM-L6-v2: nDCG@10 0.6451 (whole abstracts, no chunking).

Two ways to run:

    # through the real pipeline: `doclake up` (API → Celery → gold → LanceDB), then /v1/search
    .venv/bin/python bench/scifact.py --backend onnx-int8 --append
    # direct: the same chunker-free abstracts embedded in this process into a LanceDB store, searched
    # with pipelines.serve.search (no API, no Celery) — quick comparison of embedding backends
    .venv/bin/python bench/scifact.py --direct --backend torch --backend onnx-int8 --append

``--tiny`` uses 5 queries and ~30 abstracts (a smoke run, seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report, stack, summary_ms, upload_all_and_wait
from pipelines.evaluation.beir import load_beir
from pipelines.evaluation.metrics import best_chunk_ranking, mean_metrics

# "default" asks without a mode: what a new lake's /v1/search answers (hybrid on LanceDB since issue 19).
MODES = ("dense", "keyword", "hybrid", "default")
ANCHOR_NDCG = 0.6451


@dataclass
class SciFact:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def document(self, doc_id: str) -> str:
        title, text = self.corpus[doc_id]
        return f"{title}\n\n{text}".strip()


def load_scifact(root: Path, *, tiny: bool = False) -> SciFact:
    # The judged test claims, read as `doclake eval` reads a BEIR set.
    golden = load_beir(root / "qrels" / "test.tsv", root / "queries.jsonl", name="scifact")
    qrels, queries = golden.qrels, golden.queries
    corpus = {}
    for line in (root / "corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = (row.get("title") or "", row.get("text") or "")
    if tiny:
        qrels = dict(sorted(qrels.items(), key=lambda kv: int(kv[0]))[:5])
        queries = {q: queries[q] for q in qrels}
        keep = {d for rel in qrels.values() for d in rel} | set(list(corpus)[:25])
        corpus = {d: corpus[d] for d in corpus if d in keep}
    return SciFact(corpus=corpus, queries=queries, qrels=qrels)


def _score(runs_by_mode: dict[str, dict[str, list[str]]], data: SciFact) -> dict[str, dict[str, float]]:
    return {mode: mean_metrics(runs, data.qrels, k=10) for mode, runs in runs_by_mode.items()}


def run_pipeline(
    data: SciFact, *, backend: str, modes: tuple[str, ...], workdir: Path, batch: int = 200
) -> dict[str, object]:
    """Ingest through `doclake up`, ask every query through /v1/search in every mode."""
    from app.client import DoclakeClient

    env = {"DOCLAKE_EMBED_BACKEND": backend, "DOCLAKE_EMBED_CACHE_DIR": str(_cache_dir())}
    files = [(f"scifact-{d}", f"{d}.txt", data.document(d).encode()) for d in data.corpus]
    with stack(workdir, env=env) as s:
        client = s.client  # type: ignore[attr-defined]
        assert isinstance(client, DoclakeClient)
        # Abstracts are small documents: send them as batch uploads, processed a group per task.
        ingest_s, statuses = upload_all_and_wait(client, files, batch=batch, workers=2)
        chunks = client.stats().chunks
        runs: dict[str, dict[str, list[str]]] = {m: {} for m in modes}
        latencies: dict[str, list[float]] = {m: [] for m in modes}
        for qid, text in data.queries.items():
            for mode in modes:
                t0 = time.perf_counter()
                ask = None if mode == "default" else mode
                hits = client.search(text, top_k=100, mode=ask).results  # type: ignore[arg-type]
                latencies[mode].append(time.perf_counter() - t0)
                runs[mode][qid] = best_chunk_ranking([h.doc_id.removeprefix("scifact-") for h in hits])
    return {
        "documents": len(files),
        "statuses": statuses,
        "chunks": chunks,
        "ingest_s": round(ingest_s, 1),
        "chunks_per_s": round(chunks / ingest_s, 2) if ingest_s else 0.0,
        "metrics": _score(runs, data),
        "latency": {m: summary_ms(v) for m, v in latencies.items()},
    }


def _cache_dir() -> Path:
    from pipelines.settings import Settings

    return Settings().resolved_embed_cache_dir()


def run_direct(data: SciFact, *, backend: str, modes: tuple[str, ...], workdir: Path) -> dict[str, object]:
    """Whole abstracts embedded in this process into a LanceDB store, searched with pipelines.serve.search."""
    from pipelines.contracts.documents import VectorRecord
    from pipelines.contracts.search import SearchQuery
    from pipelines.runtime import Runtime
    from pipelines.serve.search import search
    from pipelines.settings import Settings

    settings = Settings(data_dir=workdir / "data", embed_backend=backend, embed_cache_dir=_cache_dir())  # type: ignore[arg-type]
    rt = Runtime.from_settings(settings)
    embedder = rt.embedder()
    ids = list(data.corpus)
    texts = [data.document(d) for d in ids]
    embedder.encode(texts[:8])  # load (and export on first use) outside the timing
    t0 = time.perf_counter()
    vectors = embedder.encode(texts)
    encode_s = time.perf_counter() - t0
    records = [
        VectorRecord(id=d, tenant="default", doc_id=d, doc_version=1, vector=v, text=t)
        for d, v, t in zip(ids, vectors, texts, strict=True)
    ]
    for start in range(0, len(records), 2000):
        rt.vectors.upsert(records[start : start + 2000])
    rt.vectors.optimize()
    runs: dict[str, dict[str, list[str]]] = {m: {} for m in modes}
    for qid, text in data.queries.items():
        for mode in modes:
            ask = None if mode == "default" else mode
            hits = search(rt, SearchQuery(query=text, top_k=100, mode=ask))  # type: ignore[arg-type]
            runs[mode][qid] = best_chunk_ranking([h.doc_id for h in hits])
    return {
        "documents": len(ids),
        "encode_s": round(encode_s, 1),
        "docs_per_s": round(len(ids) / encode_s, 2),
        "metrics": _score(runs, data),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "benchmarks" / "scifact", help="BEIR folder")
    parser.add_argument("--backend", action="append", choices=["torch", "onnx", "onnx-int8"], help="repeatable")
    parser.add_argument("--mode", action="append", choices=MODES, help="repeatable; default all four")
    parser.add_argument("--direct", action="store_true", help="embed in-process, no API/Celery")
    parser.add_argument("--tiny", action="store_true", help="5 queries, ~30 abstracts (smoke run)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: a temp dir)")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results as JSON here")
    args = parser.parse_args(argv)

    data = load_scifact(args.data, tiny=args.tiny)
    modes = tuple(args.mode or MODES)
    results: dict[str, dict[str, object]] = {}
    for backend in args.backend or ["onnx-int8", "torch"]:  # the default beside the exact vectors
        with tempfile.TemporaryDirectory(prefix=f"scifact-{backend}-", dir=args.workdir) as tmp:
            runner = run_direct if args.direct else run_pipeline
            results[backend] = runner(data, backend=backend, modes=modes, workdir=Path(tmp))

    rows = []
    for backend, r in results.items():
        metrics = r["metrics"]
        assert isinstance(metrics, dict)
        for mode in modes:
            m = metrics[mode]
            rows.append([backend, mode, round(m["ndcg@10"], 4), round(m["recall@10"], 4)])
    how = "direct (in-process embedding, LanceDB, pipelines.serve.search)" if args.direct else "real pipeline"
    body = (
        f"{len(data.queries)} queries, {len(data.corpus)} abstracts, {how}; anchor nDCG@10 {ANCHOR_NDCG}.\n\n"
        + markdown_table(["backend", "mode", "nDCG@10", "Recall@10"], rows)
        + "\n\n"
        + "\n".join(
            f"- {b}: " + ", ".join(f"{k}={v}" for k, v in r.items() if k != "metrics") for b, r in results.items()
        )
    )
    report(f"SciFact retrieval quality ({how})", body, append_to=BENCH_DOC if args.append else None)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
