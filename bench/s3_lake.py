"""Lake on S3: the freshness and ingest-throughput workloads with the lake on local disk, then on S3 + Redis.

One run, two sides, each on a fresh `doclake up` (update stream off, same backend, same documents):

- **local**: every Delta table, the LanceDB vectors, raw objects and the locks under the data root;
- **s3**: a real S3 server (SeaweedFS) and a real Redis started here as local processes;
  ``DOCLAKE_LAKE_URL=s3://lake/<run>/warehouse``, ``DOCLAKE_VECTORS_URL=s3://lake/<run>/vectors``,
  ``DOCLAKE_OBJECT_STORE_URL=s3://lake/<run>/objects``, ``DOCLAKE_LOCK_URL=redis://…``.

On each side: the freshness workload (``bench/freshness.py``: N single uploads of a 10-page PDF, one at a
time, upload → first searchable), then the ingest workload (``bench/ingest_throughput.py``: its files
uploaded at once, chunks/s from first upload to last indexed). Goals: throughput S3/local ≥ 0.8 and S3
p95 ≤ 3 s. After the run it checks that the S3 side left no ``_delta_log`` or ``.lance`` under its data
dir (everything went to the bucket) and that the bucket holds both.

    .venv/bin/python bench/s3_lake.py --uploads 30 --append
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report, stack, summary_ms
from bench.cpu import CpuUse
from bench.freshness import measure_uploads
from bench.ingest_throughput import DEFAULT_FILES, TINY_FILES, measure_pipeline

THROUGHPUT_GOAL = 0.8  # S3 chunks/s over local chunks/s
P95_GOAL_MS = 3000.0  # S3 upload → searchable


def _stored_under(data_dir: Path) -> list[str]:
    """Delta logs and Lance datasets found under a local data dir (relative paths)."""
    if not data_dir.exists():
        return []
    return sorted(
        str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.name == "_delta_log" or p.suffix == ".lance"
    )


def _log_errors(log: Path) -> list[str]:
    """Error lines and tracebacks in a stack's log (the first few, shortened)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    bad = [line for line in text.splitlines() if '"level": "ERROR"' in line or line.startswith("Traceback")]
    return [line[:300] for line in bad[:5]]


def _housekeeping_lines(log: Path) -> list[str]:
    """The stack's housekeeping reports (what each tick cost), shortened."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line[:400] for line in text.splitlines() if "housekeeping: requeued" in line]


def _stored_on_s3(endpoint: str, bucket: str, prefix: str) -> dict[str, int]:
    """How many objects under ``prefix`` belong to a Delta log and to a Lance dataset."""
    from tests.integration.servers import seaweed_client

    found = {"_delta_log": 0, ".lance": 0, "raw": 0, "objects": 0}
    for page in seaweed_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            found["objects"] += 1
            found["_delta_log"] += "/_delta_log/" in key
            found[".lance"] += ".lance/" in key
            found["raw"] += key.startswith(f"{prefix}objects/")
    return found


@contextmanager
def _s3_servers(workdir: Path, run: str) -> Iterator[tuple[dict[str, str], str]]:
    """SeaweedFS and Redis as local processes; yields (the stack's env for a lake on them, the endpoint)."""
    from tests.integration.servers import S3_KEY, S3_SECRET, redis_server, seaweed_s3

    with ExitStack() as servers:
        endpoint = servers.enter_context(seaweed_s3(workdir / "weed", buckets=("lake",)))
        redis_url = servers.enter_context(redis_server(workdir / "redis"))
        yield (
            {
                "DOCLAKE_LAKE_URL": f"s3://lake/{run}/warehouse",
                "DOCLAKE_VECTORS_URL": f"s3://lake/{run}/vectors",
                "DOCLAKE_OBJECT_STORE_URL": f"s3://lake/{run}/objects",
                "DOCLAKE_LOCK_URL": redis_url,
                "DOCLAKE_S3_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": S3_KEY,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            },
            endpoint,
        )


def _side(
    root: Path, env: dict[str, str], *, uploads: int, pages: int, files: list[tuple[str, str, bytes]]
) -> dict[str, object]:
    """Both workloads on one fresh stack: freshness first, then ingest throughput."""
    root.mkdir(parents=True)
    with stack(root, env=env) as s:
        client = s.client  # type: ignore[attr-defined]
        fresh = measure_uploads(client, uploads=uploads, pages=pages)
        pipeline_s, _, texts, cpu = measure_pipeline(s, files)
        statuses = {k: v for k, v in client.stats().documents.items() if v}
        data_dir: Path = s.data_dir  # type: ignore[attr-defined]
        log: Path = s.log  # type: ignore[attr-defined]
    return {
        "latency": summary_ms(fresh.latencies),
        "max_ms": round(max(fresh.latencies) * 1000, 1),
        "chunks_per_doc": fresh.chunks_per_doc,
        "step_ms": fresh.step_ms,
        "chunks": len(texts),
        "pipeline_s": round(pipeline_s, 3),
        "chunks_per_s": len(texts) / pipeline_s,
        "cpu": cpu,
        "statuses": statuses,
        # the two warm-ups, the timed uploads and the ingest files
        "uploaded": 2 + uploads + len(files),
        "local_tables": _stored_under(data_dir),
        "data_dir": sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else [],
        "log_errors": _log_errors(log),
        "housekeeping": _housekeeping_lines(log),
    }


def _cpu_sides(sides: dict[str, dict[str, object]]) -> str:
    """One table: CPU seconds by process role during each side's ingest, side by side."""
    uses = {name: side["cpu"] for name, side in sides.items()}
    assert all(isinstance(u, CpuUse) for u in uses.values())
    roles: list[str] = []
    for use in uses.values():
        roles += [r for r in use.by_role if r not in roles]  # type: ignore[attr-defined]
    rows: list[list[object]] = [[role, *(use.by_role.get(role, 0.0) for use in uses.values())] for role in roles]  # type: ignore[attr-defined]
    rows.append(["(idle cores)", *(round(use.idle_s, 2) for use in uses.values())])  # type: ignore[attr-defined]
    rows.append(["machine busy", *(use.machine_busy_s for use in uses.values())])  # type: ignore[attr-defined]
    rows.append(["wall s", *(use.wall_s for use in uses.values())])  # type: ignore[attr-defined]
    return markdown_table(["process", *uses], rows)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=30, help="single uploads timed for freshness")
    parser.add_argument("--pages", type=int, default=10, help="pages of the freshness PDF")
    parser.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("DOCLAKE_CORPUS", SHARED / "corpus")), help="corpus root"
    )
    parser.add_argument("--file", action="append", help="ingest file under --corpus (repeatable); default: a fixed set")
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--tiny", action="store_true", help="2 uploads of a 2-page PDF and 2 small files")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.uploads, args.pages = 2, 2
    names = args.file or (TINY_FILES if args.tiny else DEFAULT_FILES)
    files = [(f"tp{i}", Path(n).name, (args.corpus / n).read_bytes()) for i, n in enumerate(names)]

    from pipelines.settings import Settings

    env = {
        "DOCLAKE_EMBED_BACKEND": args.backend,
        "DOCLAKE_EMBED_CACHE_DIR": str(Settings().resolved_embed_cache_dir()),
        "DOCLAKE_STREAM_ENABLED": "false",
    }
    run = f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    sides: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="s3-lake-") as tmp:
        root = Path(tmp)
        sides["local"] = _side(root / "local", env, uploads=args.uploads, pages=args.pages, files=files)
        with _s3_servers(root / "servers", run) as (s3_env, endpoint):
            sides["s3"] = _side(root / "s3", {**env, **s3_env}, uploads=args.uploads, pages=args.pages, files=files)
            on_s3 = _stored_on_s3(endpoint, "lake", f"{run}/")
    local, s3 = sides["local"], sides["s3"]
    leftovers = s3["local_tables"]

    problems = []
    if leftovers:
        problems.append(f"the S3 side wrote tables under its data dir: {leftovers}")
    if not (on_s3["_delta_log"] and on_s3[".lance"] and on_s3["raw"]):
        problems.append(f"the bucket lacks the lake, the vectors or the raw uploads: {on_s3}")
    for name, side in sides.items():
        if side["statuses"] != {"indexed": side["uploaded"]}:
            problems.append(f"{name}: {side['uploaded']} uploaded, documents by status {side['statuses']}")
    if local["chunks"] != s3["chunks"]:
        problems.append(f"the sides stored different chunks: {local['chunks']} vs {s3['chunks']}")
    ratio = float(s3["chunks_per_s"]) / float(local["chunks_per_s"])  # type: ignore[arg-type]
    p95_s3 = float(s3["latency"]["p95_ms"])  # type: ignore[index]

    def row(name: str, side: dict[str, object]) -> list[object]:
        lat = side["latency"]
        assert isinstance(lat, dict)
        return [name, lat["p50_ms"], lat["p95_ms"], side["max_ms"], side["chunks"], round(side["chunks_per_s"], 2)]  # type: ignore[call-overload]

    rows = [row("local disk", local), row("S3 + Redis", s3)]
    p50 = [float(side["latency"]["p50_ms"]) for side in (local, s3)]  # type: ignore[index]
    p95 = [float(side["latency"]["p95_ms"]) for side in (local, s3)]  # type: ignore[index]
    rows.append(["S3 / local", round(p50[1] / p50[0], 2), round(p95[1] / p95[0], 2), "", "", round(ratio, 2)])
    goals = {
        "throughput_ratio": (round(ratio, 2), THROUGHPUT_GOAL, ratio >= THROUGHPUT_GOAL),
        "s3_p95_ms": (p95_s3, P95_GOAL_MS, p95_s3 <= P95_GOAL_MS),
    }
    body = (
        f"Same backend ({args.backend}), same documents, a fresh `doclake up` per side with the update stream "
        f"off. Freshness: {args.uploads} single uploads, one at a time, of a {args.pages}-page PDF "
        f"(~{s3['chunks_per_doc']} chunks each), warm worker, keyword probe every 50 ms. Ingest: "
        f"{', '.join(names)} uploaded at once. S3 side: SeaweedFS and Redis as local processes (loopback), "
        "lake, vectors, raw objects and locks on them.\n\n"
        + markdown_table(["lake", "p50 ms", "p95 ms", "max ms", "ingest chunks", "ingest chunks/s"], rows)
        + f"\n\nGoals: throughput S3/local {ratio:.2f} (≥ {THROUGHPUT_GOAL}: "
        + ("met" if goals["throughput_ratio"][2] else "missed")
        + f"); S3 p95 {p95_s3:.0f} ms (≤ {P95_GOAL_MS:.0f} ms: "
        + ("met" if goals["s3_p95_ms"][2] else "missed")
        + f"). Documents by status: local {local['statuses']}, S3 {s3['statuses']}. "
        + ("Found" if leftovers else "No")
        + f" `_delta_log` or `.lance` under the S3 side's data dir; the bucket held {on_s3['objects']} objects "
        f"({on_s3['_delta_log']} in Delta logs, {on_s3['.lance']} in Lance datasets, {on_s3['raw']} raw uploads)."
        + "\n\nMean time inside each worker step during the freshness uploads: "
        + "; ".join(
            f"{name} " + ", ".join(f"{k} {v} ms" for k, v in side["step_ms"].items()) for name, side in sides.items()
        )  # type: ignore[attr-defined]
        + ". Housekeeping ticks (sweep, Delta compaction, vector upkeep, seconds): "
        + "; ".join(f"{name} {len(side['housekeeping'])} ticks" for name, side in sides.items())  # type: ignore[arg-type]
        + "."
        + "\n\nWhere the cores went during each side's ingest (CPU s; the S3 server and Redis share the "
        "machine's cores with the pipeline here, which they would not against a remote S3):\n\n"
        + _cpu_sides(sides)
        + "".join(f"\n\n**Check failed:** {problem}." for problem in problems)
    )
    # a run whose checks failed is printed, never appended
    append_to = BENCH_DOC if args.append and not problems else None
    for name, side in sides.items():
        print(name, "housekeeping:", *side["housekeeping"], sep="\n  ")  # type: ignore[misc]
    report("Lake on S3 vs local disk: freshness and ingest throughput", body, append_to=append_to)
    assert not problems, "; ".join(problems)
    return {"sides": sides, "throughput_ratio": ratio, "goals": goals, "on_s3": on_s3, "s3_leftovers": leftovers}


if __name__ == "__main__":
    main()
