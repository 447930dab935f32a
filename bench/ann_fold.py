"""ANN fold cost: what housekeeping's optimize costs once an index exists and a few rows arrive.

Fills a fresh LanceDB table with N synthetic vectors (as `bench/search_scale.py` does), runs
housekeeping's pass (`LanceVectorStore.optimize`: compaction, then the first ANN build), writes
`--new-rows` more rows in four writes (four fragments, like four document mirrors), and times the next
`optimize()`, which folds them into the indexes. Three variants, each on its own table: both indexes,
the ANN index alone, the full-text index alone (the table stays under the ANN threshold).

    .venv/bin/python bench/ann_fold.py --rows 200000 --append
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import lancedb

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import BENCH_DOC, markdown_table, report
from bench.search_scale import DIM, fill, synthetic

VARIANTS = ("ANN + full-text", "ANN only", "full-text only")


def _add(store: object, vectors: np.ndarray, writes: int) -> None:
    from pipelines.contracts.documents import VectorRecord
    from pipelines.vectorstore.lance import LanceVectorStore

    assert isinstance(store, LanceVectorStore)
    for w, block in enumerate(np.array_split(vectors, writes)):
        store.upsert(
            [
                VectorRecord(id=f"new{w}-{i}", tenant="default", doc_id=f"newdoc{w}", doc_version=1, vector=v.tolist())
                for i, v in enumerate(block)
            ]
        )


def run_variant(variant: str, data: np.ndarray, extra: np.ndarray, root: Path) -> list[object]:
    """[variant, indexes, first pass s, fold s, rows indexed after the fold] for one fresh table."""
    store = fill(root / "vectors", data)
    store.ann_index_min_rows = 10**12 if variant == "full-text only" else 0  # type: ignore[attr-defined]
    # Always the newest version, as the store's own handle sees it (the store commits between our reads).
    db = lancedb.connect(store.path, read_consistency_interval=timedelta(0))  # type: ignore[attr-defined]
    table = db.open_table(store.table_name)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    store.optimize()  # type: ignore[attr-defined]
    first_s = time.perf_counter() - t0
    if variant == "ANN only":
        for index in table.list_indices():
            if "text" in index.columns:
                table.drop_index(index.name)
    _add(store, extra, writes=4)
    t0 = time.perf_counter()
    store.optimize()  # type: ignore[attr-defined]
    fold_s = time.perf_counter() - t0
    kinds = sorted(i.index_type for i in table.list_indices())
    return [variant, ", ".join(kinds), round(first_s, 1), round(fold_s, 1), table.count_rows()]


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--new-rows", type=int, default=2000)
    parser.add_argument("--tiny", action="store_true", help="2,000 rows, 200 new")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rows, args.new_rows = 2000, 200
    data = synthetic(args.rows)
    extra = synthetic(args.new_rows, seed=7)
    rows: list[list[object]] = []
    for variant in VARIANTS:
        with tempfile.TemporaryDirectory(prefix="ann-fold-") as tmp:
            rows.append(run_variant(variant, data, extra, Path(tmp)))
    body = (
        f"{args.rows} synthetic {DIM}-d vectors; housekeeping's pass, then {args.new_rows} new rows in four "
        "writes and the next optimize (the fold).\n\n"
        + markdown_table(["indexes", "index types", "first pass s", "fold s", "rows"], rows)
    )
    report(f"ANN fold cost at {args.rows} rows", body, append_to=BENCH_DOC if args.append else None)
    return {"rows": rows}


if __name__ == "__main__":
    main()
