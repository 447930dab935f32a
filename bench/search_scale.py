"""Search at scale on real-like embeddings: the ANN index next to hnswlib and exact search, filters, upkeep.

Rows are real chunk embeddings (SciFact and ../shared/corpus, onnx-int8) and, past those, mixtures of
them (bench/scale_data.py documents how, and how close their neighbourhoods are to the real ones);
queries are SciFact's claims. On one fresh LanceDB table, filled and indexed the way housekeeping does
(`LanceVectorStore.optimize`), the same queries measure:

- exact top-10 by numpy (the ground truth, over the rows the query may see) and its time,
- the store's ANN search (`LanceVectorStore.query`, no API): p50/p99 and recall@10 against exact,
  also over the real rows only (`real_recall_at_10`, a metadata filter),
- hnswlib HNSW (M 16, ef_construction 200) over the same rows, at the smallest ef whose recall@10
  reaches ours (`--hnswlib-ef` overrides): the peer at equal recall,
- filtered search: a tenant holding 1 % of the rows, and a metadata filter matching 1 %,
- `/v1/search` (dense, top 10, query embedding included) through `doclake up`'s API, and that
  process's RSS,
- index upkeep: `--fold-rows` new rows in writes of 1,000, then housekeeping's next pass (seconds per
  1,000 new rows), and search p99 with `--unindexed-rows` rows not folded yet.

    .venv/bin/python bench/search_scale.py --rows 100000 --json --append

The last line with `--json` is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import BENCH_DOC, markdown_table, percentile, report, stack
from bench.scale_data import expand, neighbour_profile, query_vectors, real_vectors
from pipelines.contracts.ids import MetadataValue

DIM = 384
REAL_ROWS = 20_000
SMALL_TENANT = "small"
SAMPLE_TAG: dict[str, MetadataValue] = {"sample": "one"}  # the 1 % metadata filter
REAL_TAG: dict[str, MetadataValue] = {"source": "real"}


class Rows:
    """The table's rows as numpy: vectors, tenant of each row, and which carry the two tags."""

    def __init__(self, vectors: np.ndarray, real_rows: int, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        n = len(vectors)
        self.vectors = vectors
        self.small = np.zeros(n, bool)
        self.small[rng.choice(n, max(10, n // 100), replace=False)] = True
        self.sample = np.zeros(n, bool)
        self.sample[rng.choice(n, max(10, n // 100), replace=False)] = True
        self.sample &= ~self.small
        self.real = np.zeros(n, bool)
        self.real[:real_rows] = True
        self.real &= ~self.small

    def tags(self, i: int) -> list[str]:
        from pipelines.vectorstore.base import metadata_tags

        return metadata_tags(self.metadata(i))

    def metadata(self, i: int) -> dict[str, MetadataValue]:
        return {**(SAMPLE_TAG if self.sample[i] else {}), **(REAL_TAG if self.real[i] else {})}


def exact_top10(vectors: np.ndarray, mask: np.ndarray, queries: np.ndarray) -> tuple[list[set[int]], list[float]]:
    """Ground truth: the 10 best rows among ``mask`` for each query, and each query's time."""
    allowed = np.flatnonzero(mask)
    subset = vectors[allowed]
    truth, seconds = [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = subset @ q
        top = np.argpartition(-scores, 10)[:10] if len(scores) > 10 else np.arange(len(scores))
        seconds.append(time.perf_counter() - t0)
        truth.append({int(allowed[i]) for i in top})
    return truth, seconds


def fill(store: Any, rows: Rows, start: int, stop: int, *, block: int = 50_000) -> None:
    """Write rows ``start:stop`` straight into the store's table (as mirrors would, but in big appends)."""
    import pyarrow as pa

    from pipelines.contracts.acl import stored_acl
    from pipelines.vectorstore.lance import _schema

    table = store._open_or_create(DIM)
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        n = hi - lo
        table.add(
            pa.table(
                {
                    "id": [f"r{i}" for i in range(lo, hi)],
                    "tenant": [SMALL_TENANT if rows.small[i] else "default" for i in range(lo, hi)],
                    "doc_id": [f"doc{i // 20}" for i in range(lo, hi)],
                    "doc_version": [1] * n,
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(rows.vectors[lo:hi].reshape(-1)), DIM),
                    "text": [f"chunk {i}" for i in range(lo, hi)],
                    "filename": ["scale.txt"] * n,
                    "page_start": pa.array([None] * n, pa.int32()),
                    "page_end": pa.array([None] * n, pa.int32()),
                    "char_start": [0] * n,
                    "char_end": [0] * n,
                    "metadata_json": ["{}"] * n,
                    "meta_tags": pa.array([rows.tags(i) for i in range(lo, hi)], pa.list_(pa.string())),
                    "acl": pa.array([stored_acl(None)] * n, pa.list_(pa.string())),  # public, as the store keeps it
                },
                schema=_schema(DIM),
            )
        )


def upsert(store: Any, rows: Rows, start: int, stop: int, *, write: int = 1000) -> None:
    """Rows ``start:stop`` through the store's own upsert, ``write`` rows a call (one fragment each)."""
    from pipelines.contracts.documents import VectorRecord

    for lo in range(start, stop, write):
        store.upsert(
            [
                VectorRecord(
                    id=f"r{i}",
                    tenant=SMALL_TENANT if rows.small[i] else "default",
                    doc_id=f"doc{i // 20}",
                    doc_version=1,
                    vector=rows.vectors[i].tolist(),
                    text=f"chunk {i}",
                    metadata=rows.metadata(i),
                )
                for i in range(lo, min(stop, lo + write))
            ]
        )


def timed_search(
    search: Callable[[np.ndarray], list[int]], queries: np.ndarray, truth: list[set[int]]
) -> tuple[float, list[float]]:
    """(mean recall@10, seconds per query)."""
    search(queries[0])  # warm caches
    seconds, recalls = [], []
    for q, t in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        found = search(q)
        seconds.append(time.perf_counter() - t0)
        recalls.append(len(t & set(found)) / max(1, min(10, len(t))))
    return float(np.mean(recalls)), seconds


def store_search(
    store: Any, tenant: str = "default", filter: dict[str, MetadataValue] | None = None
) -> Callable[[np.ndarray], list[int]]:
    def run(q: np.ndarray) -> list[int]:
        return [int(h.record.id[1:]) for h in store.query(q.tolist(), k=10, tenant=tenant, filter=filter)]

    return run


def hnswlib_peer(
    rows: Rows, mask: np.ndarray, queries: np.ndarray, truth: list[set[int]], target: float, ef: int | None
) -> tuple[tuple[int, float, list[float]], float]:
    """hnswlib over the rows of ``mask``: (ef, recall, seconds) at the smallest ef reaching ``target``."""
    import hnswlib

    allowed = np.flatnonzero(mask)
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(allowed), M=16, ef_construction=200)
    t0 = time.perf_counter()
    index.add_items(rows.vectors[allowed], allowed)
    build_s = time.perf_counter() - t0

    def at(e: int) -> tuple[float, list[float]]:
        index.set_ef(e)
        return timed_search(lambda q: index.knn_query(q, k=10)[0][0].tolist(), queries, truth)

    chosen: tuple[int, float, list[float]] | None = None
    for e in [ef] if ef else [12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]:
        recall, seconds = at(e)
        chosen = (e, recall, seconds)
        if recall >= target:
            break
    assert chosen is not None
    return chosen, build_s


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def api_rss_mb(supervisor_pid: int) -> float:
    """Resident memory of the `doclake serve` child of ``doclake up``."""
    for pid in _children(supervisor_pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"serve" in cmdline:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def ms(seconds: list[float], p: float) -> float:
    return round(percentile(seconds, p) * 1000, 2)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="SciFact claims (300 in the test split)")
    parser.add_argument("--fold-rows", type=int, default=5_000)
    parser.add_argument("--unindexed-rows", type=int, default=50_000)
    parser.add_argument("--hnswlib-ef", type=int, default=None)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--no-api", action="store_true", help="skip the /v1/search run")
    parser.add_argument("--tiny", action="store_true", help="3,000 rows (300 real), 20 queries, no API run")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object, last")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    real_rows = REAL_ROWS
    if args.tiny:
        args.rows, args.queries, args.fold_rows, args.unindexed_rows, args.no_api = 3000, 20, 400, 600, True
        real_rows = 300

    from pipelines.vectorstore.lance import LanceVectorStore

    real, _ = real_vectors(real_rows, backend=args.backend)
    queries, query_texts = query_vectors(args.queries, backend=args.backend)
    total = args.rows + args.fold_rows + args.unindexed_rows
    rows = Rows(expand(real, total, seed=0), len(real))
    n = args.rows
    live = np.arange(total) < n
    default = live & ~rows.small
    truth, exact_s = exact_top10(rows.vectors, default, queries)
    result: dict[str, object] = {"rows": n, "real_rows": int(rows.real[:n].sum())}

    with tempfile.TemporaryDirectory(prefix="search-scale-") as tmp:
        root = Path(tmp)
        store = LanceVectorStore(root / "data" / "vectors", ann_index_min_rows=0)
        t0 = time.perf_counter()
        fill(store, rows, 0, n)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.optimize()  # housekeeping's pass: compaction, then the first ANN build
        build_s = time.perf_counter() - t0
        recall, ann_s = timed_search(store_search(store), queries, truth)
        real_truth, _ = exact_top10(rows.vectors, default & rows.real, queries)
        real_recall, real_s = timed_search(store_search(store, filter=REAL_TAG), queries, real_truth)
        small_truth, _ = exact_top10(rows.vectors, live & rows.small, queries)
        tenant_recall, tenant_s = timed_search(store_search(store, tenant=SMALL_TENANT), queries, small_truth)
        sample_truth, _ = exact_top10(rows.vectors, default & rows.sample, queries)
        sample_recall, sample_s = timed_search(store_search(store, filter=SAMPLE_TAG), queries, sample_truth)
        (ef, h_recall, h_s), h_build = hnswlib_peer(rows, default, queries, truth, recall, args.hnswlib_ef)
        result |= {
            "fill_s": round(fill_s, 1),
            "index_build_s": round(build_s, 1),
            "recall_at_10": round(recall, 4),
            "real_recall_at_10": round(real_recall, 4),
            "ann_p50_ms": ms(ann_s, 50),
            "ann_p99_ms": ms(ann_s, 99),
            "real_filter_p99_ms": ms(real_s, 99),
            "tenant_1pct_recall_at_10": round(tenant_recall, 4),
            "tenant_1pct_p99_ms": ms(tenant_s, 99),
            "filter_1pct_recall_at_10": round(sample_recall, 4),
            "filter_1pct_p99_ms": ms(sample_s, 99),
            "filtered_recall_at_10": round(min(tenant_recall, sample_recall), 4),
            "hnswlib_ef": ef,
            "hnswlib_build_s": round(h_build, 1),
            "hnswlib_recall_at_10": round(h_recall, 4),
            "hnswlib_p50_ms": ms(h_s, 50),
            "hnswlib_p99_ms": ms(h_s, 99),
            "ann_p99_over_hnswlib_p99": round(percentile(ann_s, 99) / max(percentile(h_s, 99), 1e-9), 1),
            "exact_p50_ms": ms(exact_s, 50),
        }

        def api_run() -> None:
            env = {"DOCLAKE_EMBED_BACKEND": args.backend, "DOCLAKE_SWEEP_INTERVAL_S": "86400"}
            with stack(root, env=env) as s:
                client = s.client  # type: ignore[attr-defined]
                for t in query_texts[:20]:  # warm the table, the model and the caches
                    client.search(t, top_k=10)
                api_s = []
                for t in query_texts:
                    t0 = time.perf_counter()
                    client.search(t, top_k=10, mode="dense")
                    api_s.append(time.perf_counter() - t0)
                result.update(
                    api_p50_ms=ms(api_s, 50),
                    api_p99_ms=ms(api_s, 99),
                    api_rss_mb=api_rss_mb(s.proc.pid),  # type: ignore[attr-defined]
                )

        if not args.no_api:
            api_run()
        else:
            result.update(api_p50_ms=None, api_p99_ms=None, api_rss_mb=None)

        # Upkeep: new rows through the store's own upsert, then housekeeping's next pass.
        grown = n + args.fold_rows
        upsert(store, rows, n, grown)
        t0 = time.perf_counter()
        store.optimize()
        fold_s = time.perf_counter() - t0
        shape = store.index_shape()
        unindexed_total = grown + args.unindexed_rows
        upsert(store, rows, grown, unindexed_total, write=5000)
        now = np.arange(total) < unindexed_total
        u_truth, _ = exact_top10(rows.vectors, now & ~rows.small, queries)
        u_recall, u_s = timed_search(store_search(store), queries, u_truth)
        t0 = time.perf_counter()
        store.optimize()
        fold_big_s = time.perf_counter() - t0
        after = store.index_shape()
        f_recall, f_s = timed_search(store_search(store), queries, u_truth)
        result |= {
            "fold_rows": args.fold_rows,
            "fold_seconds_per_1k_rows": round(fold_s / (args.fold_rows / 1000), 3),
            "index_after_fold": shape.rows_per_delta if shape else None,
            "unindexed_rows": args.unindexed_rows,
            "unindexed_search_p50_ms": ms(u_s, 50),
            "unindexed_search_p99_ms": ms(u_s, 99),
            "unindexed_recall_at_10": round(u_recall, 4),
            "fold_unindexed_s": round(fold_big_s, 1),
            "index_after_second_fold": after.rows_per_delta if after else None,
            "after_second_fold_p99_ms": ms(f_s, 99),
            "after_second_fold_recall_at_10": round(f_recall, 4),
            "rows_after": store.count(),
            "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        assert result["rows_after"] == unindexed_total, "a fold lost or duplicated rows"

    profile_real = neighbour_profile(rows.vectors[rows.real])
    profile_mixed = neighbour_profile(rows.vectors[len(real) : len(real) * 2]) if total >= 2 * len(real) else {}
    body = (
        f"{n} rows: {len(real)} real chunk embeddings ({args.backend}) and mixtures of them "
        f"(bench/scale_data.py; nearest-neighbour cosine quartiles real {profile_real}, as many mixtures "
        f"{profile_mixed}); {args.queries} SciFact claims as queries; index: housekeeping's "
        "(pipelines/vectorstore/ann.py).\n\n" + markdown_table(["metric", "value"], [[k, v] for k, v in result.items()])
    )
    report(f"Search at scale, {n} rows", body, append_to=BENCH_DOC if args.append else None)
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
