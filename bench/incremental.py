"""Incremental edits: a ~100-chunk document with one paragraph changed, versus a full re-ingest.

Runs the pipeline's own steps in this process (register → extract → chunk+embed → mirror, exactly
what a worker runs for a task) on a fresh data root, and reads how many chunks each version really
embedded (the rest are reused from gold by text hash).

    .venv/bin/python bench/incremental.py --sections 100 --append
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, markdown_table, report


def manual(sections: int, *, edited: int | None = None, salt: str = "") -> bytes:
    """A Markdown manual of ``sections`` sections, each long enough to be its own chunk."""
    parts = [f"# Operations manual {salt}\n"]
    for i in range(sections):
        body = " ".join(
            f"Procedure {i}.{j} {salt} restarts service {i} after an outage, checks the replication lag of "
            f"cluster {i}, drains node {j} and files the incident report for shift {i * j}."
            for j in range(6)
        )
        if i == edited:
            body = (
                f"Procedure {i} was rewritten: drain the load balancer, rotate the TLS keys, then page the lead. " * 4
            )
        parts.append(f"## Section {i}\n\n{body}\n")
    return "\n".join(parts).encode()


def _ingest(rt: object, data: bytes, *, doc_id: str, tenant: str = "default") -> tuple[float, object]:
    from pipelines.ingest.register import RegisterItem, register_objects
    from pipelines.ingest.runner import chain, run_step
    from pipelines.runtime import Runtime

    assert isinstance(rt, Runtime)
    t0 = time.perf_counter()
    reg = register_objects(rt, [RegisterItem(data=data, filename=f"{doc_id}.md", doc_id=doc_id)], tenant=tenant)[0]
    results = {}
    for step in chain(rt.settings):
        outcome = run_step(rt, step, tenant, {doc_id: reg.version}, can_retry=False)[doc_id]
        assert outcome.state == "done", outcome.error
        results[step.name] = outcome.result
    return time.perf_counter() - t0, results["chunk_embed"]


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=100)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--tiny", action="store_true", help="a 5-section document")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.sections = 5

    from pipelines.extract.sandbox import start_server
    from pipelines.runtime import Runtime
    from pipelines.settings import Settings

    with tempfile.TemporaryDirectory(prefix="incremental-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", embed_backend=args.backend)
        rt = Runtime.from_settings(settings)
        rt.embedder().encode(["warm up"])
        # As a worker does at start (workers/signals.py): the extraction server warms the parsers once,
        # seconds that a running service never pays per edit.
        start_server()
        _ingest(rt, manual(3, salt="warm"), doc_id="warm")  # first Delta writes and extraction warm-up
        full_s, full = _ingest(rt, manual(args.sections), doc_id="manual")
        edit_s, edit = _ingest(rt, manual(args.sections, edited=args.sections // 2), doc_id="manual")
        # A full re-ingest of the same size: a different text everywhere, so nothing is reused.
        again_s, again = _ingest(rt, manual(args.sections, salt="v2"), doc_id="manual")
    rows = [
        ["first ingest", full.chunks, full.embedded, round(full_s, 2)],  # type: ignore[attr-defined]
        ["one paragraph changed", edit.chunks, edit.embedded, round(edit_s, 2)],  # type: ignore[attr-defined]
        ["full re-ingest (every chunk changed)", again.chunks, again.embedded, round(again_s, 2)],  # type: ignore[attr-defined]
    ]
    body = (
        f"Pipeline steps in-process (register, extract, chunk+embed, mirror), backend {args.backend}.\n\n"
        + markdown_table(["version", "chunks", "chunks embedded", "seconds"], rows)
    )
    report("Incremental edits", body, append_to=BENCH_DOC if args.append else None)
    return {"rows": rows}


if __name__ == "__main__":
    main()
