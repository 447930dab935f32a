"""Search at scale: /v1/search latency and QPS next to its parts, and ANN recall against exact search.

Fills a fresh data root's LanceDB table with N synthetic unit vectors (clustered like real
embeddings: Gaussian blobs around random centres), builds the ANN index the way housekeeping does
(IVF_HNSW_SQ: `LanceVectorStore.optimize` compacts, then builds it), then measures, on the same queries:

- exact top-10 by numpy brute force (the ground truth) and its time,
- raw LanceDB ANN search time (no API) and recall@10 against exact,
- query-embedding time of real SciFact claims with the chosen backend,
- `/v1/search` p50/p99 (sequential, interleaved query by query with this process's embed + raw ANN
  of the same table, so both see the same load) and QPS (concurrent clients) through `doclake up`'s API,
- keyword (BM25) `/v1/search` p50/p99: the rows carry real text (SciFact abstracts cut into 60-word
  pieces, cycled); the vectors stay synthetic, as embedding 100k real chunks takes hours on 2 cores.

Goal: /v1/search p99 ≤ 1.3 times (query embed + raw ANN) p99, recall@10 ≥ 0.95.

    .venv/bin/python bench/search_scale.py --rows 100000 --append
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import BENCH_DOC, SHARED, markdown_table, percentile, report, stack

DIM = 384


def synthetic(rows: int, *, seed: int = 0, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    data = centres[rng.integers(0, clusters, rows)] + 0.6 * rng.normal(size=(rows, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data


def real_texts(rows: int) -> list[str]:
    """``rows`` chunk texts cut from SciFact abstracts (cycled): real words for the full-text index."""
    pieces: list[str] = []
    with (SHARED / "benchmarks/scifact/corpus.jsonl").open() as f:
        for line in f:
            doc = json.loads(line)
            words = f"{doc.get('title', '')}. {doc.get('text', '')}".split()
            pieces.extend(" ".join(words[i : i + 60]) for i in range(0, len(words), 60))
            if len(pieces) >= rows:
                break
    return [pieces[i % len(pieces)] for i in range(rows)]


def fill(vectors_dir: Path, data: np.ndarray, texts: list[str] | None = None) -> object:
    import pyarrow as pa

    from pipelines.vectorstore.lance import LanceVectorStore, _schema

    store = LanceVectorStore(vectors_dir)
    table = store._open_or_create(DIM)
    for start in range(0, len(data), 50_000):
        block = data[start : start + 50_000]
        n = len(block)
        ids = [f"syn{start + i}" for i in range(n)]
        table.add(
            pa.table(
                {
                    "id": ids,
                    "tenant": ["default"] * n,
                    "doc_id": [f"syndoc{(start + i) // 100}" for i in range(n)],
                    "doc_version": [1] * n,
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), DIM),
                    "text": texts[start : start + n] if texts else [f"synthetic chunk {start + i}" for i in range(n)],
                    "filename": ["synthetic.txt"] * n,
                    "page_start": pa.array([None] * n, pa.int32()),
                    "page_end": pa.array([None] * n, pa.int32()),
                    "char_start": [0] * n,
                    "char_end": [0] * n,
                    "metadata_json": ["{}"] * n,
                    "meta_tags": pa.array([[]] * n, pa.list_(pa.string())),
                },
                schema=_schema(DIM),
            )
        )
    return store


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for the QPS run")
    parser.add_argument("--qps-seconds", type=float, default=20.0)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--tiny", action="store_true", help="2,000 rows, 20 queries, no API run")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rows, args.queries = 2000, 20

    from pipelines.embed.model import EmbedConfig, Embedder
    from pipelines.settings import Settings

    data = synthetic(args.rows)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, args.rows, args.queries)
    queries = data[picks] + 0.3 * rng.normal(size=(args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    exact_s, exact_ids = [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = data @ q
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        exact_s.append(time.perf_counter() - t0)
        exact_ids.append({f"syn{i}" for i in top})

    texts = [json.loads(line)["text"] for line in (SHARED / "benchmarks/scifact/queries.jsonl").open()][: args.queries]
    settings = Settings()
    embedder = Embedder(
        EmbedConfig(
            model_path=settings.resolved_model_path(),
            model_id=settings.model_id,
            backend=args.backend,
            cache_dir=settings.resolved_embed_cache_dir(),
        )
    )
    embedder.encode_query("warm up")
    embed_s = []
    for t in texts:
        t0 = time.perf_counter()
        embedder.encode_query(t)
        embed_s.append(time.perf_counter() - t0)

    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="search-scale-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        store = fill(root / "data" / "vectors", data, None if args.tiny else real_texts(args.rows))
        fill_s = time.perf_counter() - t0
        # Housekeeping's own pass (LanceVectorStore.optimize): compaction, then the first ANN build
        # on the compacted table; the threshold is lowered so that --tiny builds one too.
        store.ann_index_min_rows = 0  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        store.optimize()  # type: ignore[attr-defined]
        optimize_s = time.perf_counter() - t0
        ann_s, recalls = [], []
        for q, truth in zip(queries, exact_ids, strict=True):
            t0 = time.perf_counter()
            hits = store.query(q.tolist(), k=10, tenant="default")  # type: ignore[attr-defined]
            ann_s.append(time.perf_counter() - t0)
            recalls.append(len(truth & {h.record.id for h in hits}) / 10)
        parts = [e + a for e, a in zip(embed_s, ann_s, strict=False)]
        result = {
            "rows": args.rows,
            "fill_s": round(fill_s, 1),
            "optimize_and_index_build_s": round(optimize_s, 1),
            "recall@10": round(float(np.mean(recalls)), 4),
            "exact_p50_ms": round(percentile(exact_s, 50) * 1000, 2),
            "ann_p50_ms": round(percentile(ann_s, 50) * 1000, 2),
            "ann_p99_ms": round(percentile(ann_s, 99) * 1000, 2),
            "embed_p50_ms": round(percentile(embed_s, 50) * 1000, 2),
            "embed_p99_ms": round(percentile(embed_s, 99) * 1000, 2),
            "parts_p99_ms": round(percentile(parts, 99) * 1000, 2),
        }
        if not args.tiny:
            env = {
                "DOCLAKE_EMBED_BACKEND": args.backend,
                "DOCLAKE_EMBED_CACHE_DIR": str(settings.resolved_embed_cache_dir()),
            }
            with stack(root, env=env) as s:
                client = s.client  # type: ignore[attr-defined]
                for t in texts[:20]:  # healthy means the query model is loaded; warm the table and caches
                    client.search(t, top_k=10)
                # Interleaved, so both sides see the same load on a shared machine: the parts (this
                # process's query embedding + raw ANN search of the same table) then the API, per query.
                api_s, api_parts = [], []
                for t in texts:
                    t0 = time.perf_counter()
                    store.query(embedder.encode_query(t), k=10, tenant="default")  # type: ignore[attr-defined]
                    api_parts.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    client.search(t, top_k=10)
                    api_s.append(time.perf_counter() - t0)
                keyword_s = []
                for t in texts:
                    t0 = time.perf_counter()
                    client.search(t, top_k=10, mode="keyword")
                    keyword_s.append(time.perf_counter() - t0)
                done = [0]
                stop = time.monotonic() + args.qps_seconds

                def worker(offset: int) -> None:
                    from app.client import DoclakeClient

                    with DoclakeClient(s.url, timeout=60) as c:  # type: ignore[attr-defined]
                        i = offset
                        while time.monotonic() < stop:
                            c.search(texts[i % len(texts)], top_k=10)
                            done[0] += 1
                            i += 1

                t0 = time.perf_counter()
                threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                qps = done[0] / (time.perf_counter() - t0)
            result |= {
                "interleaved_parts_p50_ms": round(percentile(api_parts, 50) * 1000, 1),
                "interleaved_parts_p99_ms": round(percentile(api_parts, 99) * 1000, 1),
                "api_p50_ms": round(percentile(api_s, 50) * 1000, 1),
                "api_p99_ms": round(percentile(api_s, 99) * 1000, 1),
                "api_keyword_p50_ms": round(percentile(keyword_s, 50) * 1000, 1),
                "api_keyword_p99_ms": round(percentile(keyword_s, 99) * 1000, 1),
                "qps": round(qps, 1),
                "api_p99_over_parts_p99": round(percentile(api_s, 99) / percentile(api_parts, 99), 2),
            }
    header = list(result)
    body = (
        f"{args.rows} synthetic 384-d unit vectors (1,000 Gaussian clusters) with real SciFact text, "
        f"{args.queries} queries, IVF_HNSW_SQ "
        f"(nprobes 20, refine 10), query embedding backend {args.backend}, {args.clients} clients for QPS.\n\n"
        + markdown_table(["metric", "value"], [[k, result[k]] for k in header])
    )
    report(f"Search at {args.rows} rows", body, append_to=BENCH_DOC if args.append else None)
    return result


if __name__ == "__main__":
    main()
