"""Freshness: upload → first searchable, p50/p95 over single-document uploads of a 10-page PDF.

Starts the real embedded stack (`doclake up`: API + Celery workers), warms it with one upload, then
uploads documents one at a time; each carries a unique metadata tag, and the clock stops when a
search filtered on that tag first returns a chunk. Goal: p95 ≤ 2 s.

    .venv/bin/python bench/freshness.py --uploads 30 --pages 10 --append

(The change-event path through the Spark stream is not measured by this script.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, markdown_table, multipage_pdf, report, stack, summary_ms


def _until_searchable(client: object, tag: str, timeout: float) -> float:
    from app.client import DoclakeClient

    assert isinstance(client, DoclakeClient)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.search("page", top_k=1, filter={"probe": tag}).results:
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError(f"{tag} not searchable after {timeout:.0f}s")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--tiny", action="store_true", help="3 uploads of a 2-page PDF")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.uploads, args.pages = 3, 2

    from pipelines.settings import Settings

    env = {
        "DOCLAKE_EMBED_BACKEND": args.backend,
        "DOCLAKE_EMBED_CACHE_DIR": str(Settings().resolved_embed_cache_dir()),
    }
    latencies: list[float] = []
    chunks = 0
    with tempfile.TemporaryDirectory(prefix="freshness-") as tmp, stack(Path(tmp), env=env) as s:
        client = s.client  # type: ignore[attr-defined]
        client.upload_and_wait(multipage_pdf(args.pages, seed=-1), filename="warm.pdf", metadata={"probe": "warm"})
        for i in range(args.uploads):
            pdf = multipage_pdf(args.pages, seed=i)
            tag = f"p{i}"
            t0 = time.perf_counter()
            accepted = client.upload(pdf, filename=f"fresh-{i}.pdf", metadata={"probe": tag})
            latencies.append(_until_searchable(client, tag, 300) - t0)
        chunks = client.wait(accepted.doc_id).chunks
    stats = summary_ms(latencies)
    body = (
        f"{args.uploads} uploads, one at a time, of a {args.pages}-page PDF (~{chunks} chunks each), "
        f"backend {args.backend}, warm worker.\n\n"
        + markdown_table(["p50 ms", "p95 ms", "max ms"], [[stats["p50_ms"], stats["p95_ms"], max(latencies) * 1000]])
    )
    report("Freshness: upload to first searchable", body, append_to=BENCH_DOC if args.append else None)
    return {"latency": stats, "chunks_per_doc": chunks}


if __name__ == "__main__":
    main()
