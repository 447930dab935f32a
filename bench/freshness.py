"""Freshness: upload → first searchable, p50/p95 over single-document uploads of a 10-page PDF.

Starts the real embedded stack (`doclake up`: API + Celery workers), warms it with one upload, then
uploads documents one at a time; each carries a unique metadata tag, and the clock stops when a
search filtered on that tag first returns a chunk (a keyword probe every 50 ms: see
``_until_searchable``). Goal (issue 21, onnx-int8 by default): p95 ≤ 1.0 s, and ≤ 2.5 s with ``--inflight 3``.

    .venv/bin/python bench/freshness.py --uploads 30 --pages 10 --append

``--inflight K`` uploads K documents at once per round and times each: freshness while other
documents are being embedded (the last of a round waits for the embedding of those before it).

``--scans N`` uploads N image-only 5-page scans just before the timed uploads, so the timed text PDFs
are extracted and embedded while OCR runs (issue 18: OCR must not starve embedding; scans go to the
OCR lane, or with DOCLAKE_OCR_LANE=false to the extract queue); the scans' own time to searchable is
reported beside.

``--stream`` measures change events through the Spark update stream instead (goal: p95 ≤ 5 s): the
stack runs with its stream; each event is appended to bronze.document_updates by this process, as
any producer would, alternating a text ``upsert`` (re-chunked and embedded by the stream) and a
``PATCH /v1/documents/{id}`` metadata change; the clock stops when a search filtered on the event's
tag returns the document.

    .venv/bin/python bench/freshness.py --stream --uploads 30 --append
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, markdown_table, multipage_pdf, report, scan_pdf, stack, summary_ms


def step_seconds(exposition: str) -> dict[str, tuple[float, int]]:
    """(sum of seconds, count) of each ingestion step in a Prometheus exposition of ``/metrics``."""
    found: dict[str, list[float]] = {}
    for line in exposition.splitlines():
        for suffix, slot in (("_sum", 0), ("_count", 1)):
            name = f"doclake_step_duration_seconds{suffix}{{"
            if line.startswith(name):
                step = line.split('step="', 1)[1].split('"', 1)[0]
                found.setdefault(step, [0.0, 0.0])[slot] += float(line.rsplit(" ", 1)[1])
    return {step: (total, int(count)) for step, (total, count) in found.items()}


def _until_searchable(client: object, tag: str, timeout: float, *, query: str) -> float:
    """When a search filtered on ``tag`` first returns the document.

    The probe is a keyword search: it reads the same rows of the same table as a dense search, but
    costs the API no query embedding, so polling every 50 ms does not take a core away from the
    worker being measured (dense probes every 20 ms kept the API busy and slowed embedding ~2x).
    """
    from app.client import DoclakeClient

    assert isinstance(client, DoclakeClient)
    return _until_all_searchable(client, {tag: query}, timeout)[tag]


def _until_all_searchable(client: object, queries: dict[str, str], timeout: float) -> dict[str, float]:
    """When each tag (→ its keyword query) first returns its document, probing all of them in turns."""
    from app.client import DoclakeClient

    assert isinstance(client, DoclakeClient)
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tag, query in queries.items():
            if tag not in found and client.search(query, top_k=1, filter={"probe": tag}, mode="keyword").results:
                found[tag] = time.perf_counter()
        if len(found) == len(queries):
            return found
        time.sleep(0.05)
    raise TimeoutError(f"{sorted(set(queries) - set(found))} not searchable after {timeout:.0f}s")


# Words of the bench vocabulary (bench.common): every scanned page has several of them.
_SCAN_WORDS = "service replica outage latency broker worker index vector chunk document"


@dataclass
class UploadRun:
    """What :func:`measure_uploads` saw: one latency per upload, chunks of the last one, mean step times."""

    latencies: list[float]
    chunks_per_doc: int
    step_ms: dict[str, int]
    scan_latencies: list[float]


def measure_uploads(
    client: object, *, uploads: int, pages: int, inflight: int = 1, timeout: float = 300, scans: int = 0
) -> UploadRun:
    """Warm the stack with one upload, then time ``uploads`` uploads of a ``pages``-page PDF until searchable.

    ``inflight`` documents are sent at once per round, each timed from its own upload.
    """
    from app.client import DoclakeClient

    assert isinstance(client, DoclakeClient)
    latencies: list[float] = []
    client.upload_and_wait(multipage_pdf(pages, seed=-1), filename="warm.pdf", metadata={"probe": "warm"})
    before = step_seconds(client.metrics())
    scan_sent: dict[str, float] = {}
    for i in range(scans):
        scan_sent[f"s{i}"] = time.perf_counter()
        client.upload(scan_pdf(5, seed=i), filename=f"scan-{i}.pdf", metadata={"probe": f"s{i}"})
    for start in range(0, uploads, inflight):
        sent: dict[str, float] = {}
        queries: dict[str, str] = {}
        for i in range(start, min(uploads, start + inflight)):
            tag = f"p{i}"
            sent[tag] = time.perf_counter()
            accepted = client.upload(multipage_pdf(pages, seed=i), filename=f"fresh-{i}.pdf", metadata={"probe": tag})
            queries[tag] = f"seed{i}page0"
        found = _until_all_searchable(client, queries, timeout)
        latencies.extend(found[tag] - t0 for tag, t0 in sent.items())
    chunks = client.wait(accepted.doc_id).chunks
    if scans:
        # Any chunk of the scan will do (a document's chunks are mirrored at once); not its marker word,
        # which OCR reads with an O for the 0 ("scanOpage0").
        found = _until_all_searchable(client, dict.fromkeys(scan_sent, _SCAN_WORDS), timeout * 4)
        scan_latencies = [found[tag] - t0 for tag, t0 in scan_sent.items()]
    after = step_seconds(client.metrics())
    steps = {}
    for step, (total, count) in after.items():
        base_total, base_count = before.get(step, (0.0, 0))
        steps[step] = round(1000 * (total - base_total) / max(1, count - base_count))
    return UploadRun(
        latencies=latencies, chunks_per_doc=chunks, step_ms=steps, scan_latencies=scan_latencies if scans else []
    )


def _stream_events(client: object, data_dir: Path, count: int, timeout: float) -> dict[str, list[float]]:
    """Time ``count`` change events (alternating text upsert and metadata PATCH) until searchable."""
    from datetime import UTC, datetime

    from app.client import DoclakeClient
    from pipelines.contracts.updates import DocumentUpdate, UpdateOp
    from pipelines.runtime import Runtime
    from pipelines.settings import Settings
    from pipelines.stream.changes import append_updates

    assert isinstance(client, DoclakeClient)
    lake = Runtime.from_settings(Settings(data_dir=data_dir)).lake  # the stack's lake and its write locks
    accepted = client.upload_and_wait(
        b"The night ferry leaves the harbour at eleven.", filename="ferry.txt", metadata={"probe": "start"}
    )
    doc_id, version = accepted.doc_id, accepted.version
    # The stream's JVM starts in the background: the first event waits for it and is not counted.
    version = _patch(client, doc_id, "warm")
    _until_searchable(client, "warm", timeout, query="ferry")
    latencies: dict[str, list[float]] = {"upsert": [], "patch": []}
    for i in range(count):
        tag = f"e{i}"
        t0 = time.perf_counter()
        if i % 2 == 0:
            version += 1
            text = f"Timetable revision {i}: the night ferry now leaves the harbour at {i % 12 + 1} o'clock."
            event = DocumentUpdate(
                event_id=f"bench-{doc_id}-{version}",
                doc_id=doc_id,
                op=UpdateOp.upsert,
                version=version,
                text=text,
                metadata={"probe": tag},
                ts=datetime.now(UTC),
            )
            append_updates(lake, [event])
            latencies["upsert"].append(_until_searchable(client, tag, timeout, query="ferry") - t0)
        else:
            version = _patch(client, doc_id, tag)
            latencies["patch"].append(_until_searchable(client, tag, timeout, query="ferry") - t0)
    return latencies


def _patch(client: object, doc_id: str, tag: str) -> int:
    from app.client import DoclakeClient

    assert isinstance(client, DoclakeClient)
    r = client._http.patch(f"/v1/documents/{doc_id}", json={"metadata": {"probe": tag}})
    r.raise_for_status()
    return int(r.json()["version"])


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument(
        "--inflight",
        type=int,
        default=1,
        help="upload this many documents at once per round (each one timed): freshness under load",
    )
    parser.add_argument("--scans", type=int, default=0, help="5-page image-only scans uploaded first (OCR load)")
    parser.add_argument("--tiny", action="store_true", help="3 uploads of a 2-page PDF (or 2 events)")
    parser.add_argument("--stream", action="store_true", help="change events through the Spark stream instead")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.uploads, args.pages = 3, 2

    from pipelines.settings import Settings

    env = {
        "DOCLAKE_EMBED_BACKEND": args.backend,
        "DOCLAKE_EMBED_CACHE_DIR": str(Settings().resolved_embed_cache_dir()),
    }
    if args.stream:
        return _main_stream(args, env)
    with tempfile.TemporaryDirectory(prefix="freshness-") as tmp, stack(Path(tmp), env=env) as s:
        run = measure_uploads(
            s.client,  # type: ignore[attr-defined]
            uploads=args.uploads,
            pages=args.pages,
            inflight=args.inflight,
            scans=args.scans,
        )
    latencies, chunks, steps = run.latencies, run.chunks_per_doc, run.step_ms
    stats = summary_ms(latencies)
    body = (
        f"{args.uploads} uploads, {'one at a time' if args.inflight == 1 else f'{args.inflight} at a time'}, "
        f"of a {args.pages}-page PDF (~{chunks} chunks each), "
        f"backend {args.backend}, warm worker; keyword-search probe every 50 ms.\n\n"
        + markdown_table(["p50 ms", "p95 ms", "max ms"], [[stats["p50_ms"], stats["p95_ms"], max(latencies) * 1000]])
        + "\n\nMean time inside each worker step (from `/metrics`), the rest being the API, queue hops and the probe: "
        + ", ".join(f"{k} {v} ms" for k, v in steps.items())
        + "."
    )
    if args.scans:
        scan_stats = summary_ms(run.scan_latencies)
        body += (
            f"\n\nWith {args.scans} image-only 5-page scans uploaded just before (their OCR running meanwhile): "
            f"scans searchable after p50 {scan_stats['p50_ms'] / 1000:.1f} s, max {max(run.scan_latencies):.1f} s."
        )
    report("Freshness: upload to first searchable", body, append_to=BENCH_DOC if args.append else None)
    return {
        "latency": stats,
        "timed": len(latencies),
        "chunks_per_doc": chunks,
        "step_ms": steps,
        "scan_latency": summary_ms(run.scan_latencies) if args.scans else None,
    }


def _main_stream(args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    count = 2 if args.tiny else args.uploads
    env = {**env, "DOCLAKE_STREAM_ENABLED": "true"}
    with tempfile.TemporaryDirectory(prefix="freshness-stream-") as tmp, stack(Path(tmp), env=env) as s:
        latencies = _stream_events(s.client, s.data_dir, count, 600)  # type: ignore[attr-defined]
    rows = []
    for op, values in latencies.items():
        stats = summary_ms(values)
        rows.append([op, len(values), round(stats["p50_ms"]), round(stats["p95_ms"]), round(max(values) * 1000)])
    every = summary_ms([v for values in latencies.values() for v in values])
    rows.append(["all", count, round(every["p50_ms"]), round(every["p95_ms"]), ""])
    from pipelines.settings import Settings

    body = (
        f"{count} change events, one at a time, through the Spark update stream (delta source, trigger "
        f"{Settings().stream_trigger_s:g} s), backend {args.backend}: text upserts appended to "
        "bronze.document_updates alternate with metadata PATCHes through the API; the clock stops at the "
        "first search filtered on the event's tag that returns the document.\n\n"
        + markdown_table(["event", "events", "p50 ms", "p95 ms", "max ms"], rows)
    )
    report("Freshness: change event through the Spark stream", body, append_to=BENCH_DOC if args.append else None)
    return {"latency": every, "by_op": {op: summary_ms(v) for op, v in latencies.items()}}


if __name__ == "__main__":
    main()
