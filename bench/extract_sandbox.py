"""What the clean extraction server costs against forking the worker: time per file, start, memory, warnings.

    .venv/bin/python bench/extract_sandbox.py --append

Each mode runs in a process of its own that first does what a worker does before it extracts: writes a
Delta table and a LanceDB table (so both libraries' runtimes are live). Then it extracts the same corpus
files through :func:`pipelines.extract.extractor.extract_bytes`, the bounded call the workers make:

- ``fork``: the previous design, the parsers warmed in the worker and each child forked from it;
- ``server``: today's, each child forked from the extraction server (a multiprocessing forkserver that
  warmed the parsers and never loaded deltalake or LanceDB).

Reported: median ms per file over ``--repeat`` runs, seconds from start until the first file could be
extracted, the resident memory of the worker and of the server (PSS: shared pages counted once), and how
many fork warnings lancedb printed. ``--tiny`` takes one small file per format.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report

_FORMATS = ("md", "txt", "html", "pdf", "docx", "pptx", "xlsx", "eml")


def _files(per_format: int) -> list[Path]:
    picked: list[Path] = []
    for fmt in _FORMATS:
        folder = SHARED / "corpus" / fmt
        if folder.is_dir():
            # The smallest files: the per-file cost of the sandbox is what is measured, not the parsers'.
            picked += sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_size)[:per_format]
    return picked


def _memory_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["pss_kb"] = int(line.split()[1])
    return out


def measure(mode: str, files: list[Path], repeat: int) -> dict[str, Any]:
    """Run in a fresh process (see main): one mode, every file ``repeat`` times."""
    import multiprocessing
    import os

    import deltalake
    import lancedb
    import pyarrow as pa

    from pipelines.extract import sandbox
    from pipelines.extract.extractor import extract_bytes, warm_up

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        lancedb.connect(f"{tmp}/vectors").create_table("t", pa.table({"a": [1]}))
        deltalake.write_deltalake(f"{tmp}/table", pa.table({"a": [1]}))
    if mode == "fork":
        warm_up()
        fork = multiprocessing.get_context("fork")
        sandbox._process = lambda target, args: fork.Process(target=target, args=args, daemon=True)  # type: ignore[assignment]
    else:
        sandbox.start_server()
    extract_bytes(b"Ready. Two sentences.", doc_id="ready", filename="ready.txt")
    ready_s = time.perf_counter() - started
    per_file: dict[str, float] = {}
    failures = 0
    for path in files:
        data = path.read_bytes()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            try:
                extract_bytes(data, doc_id=path.name, filename=path.name)
            except Exception:  # a corpus file that fails still costs its child
                failures += 1
            times.append(time.perf_counter() - t0)
        per_file[f"{path.parent.name}/{path.name}"] = statistics.median(times)
    memory = {"worker": _memory_kb(os.getpid())}
    if mode == "server":
        server: Any = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
        memory["server"] = _memory_kb(server._forkserver_pid)
    return {
        "mode": mode,
        "ready_s": round(ready_s, 2),
        "per_file_ms": {k: round(v * 1000, 1) for k, v in per_file.items()},
        "median_ms": round(statistics.median(per_file.values()) * 1000, 1),
        "mean_ms": round(statistics.fmean(per_file.values()) * 1000, 1),
        "memory": memory,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-format", type=int, default=3, help="Smallest files taken per corpus format.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="One file per format, one run each.")
    parser.add_argument("--mode", choices=("fork", "server"), help=argparse.SUPPRESS)  # the measuring child
    parser.add_argument("--append", action="store_true", help=f"Append the report to {BENCH_DOC}.")
    args = parser.parse_args(argv)
    if args.tiny:
        args.per_format, args.repeat = 1, 1
    files = _files(args.per_format)
    if args.mode:
        result = measure(args.mode, files, args.repeat)
        print(json.dumps(result))
        return result

    results = {}
    for mode in ("fork", "server"):
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--per-format",
            str(args.per_format),
            "--repeat",
            str(args.repeat),
        ]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        # lancedb warns in the forked child (its at-fork hook), so the warning is in the children's stderr.
        results[mode]["fork_warnings"] = done.stderr.count("fork support is experimental")

    def mb(kb: int | None) -> str:
        return f"{kb / 1024:.0f}" if kb else "-"

    rows = []
    for mode, r in results.items():
        worker, server = r["memory"]["worker"], r["memory"].get("server", {})
        rows.append(
            [
                "fork the worker (before)" if mode == "fork" else "clean server (now)",
                r["median_ms"],
                r["mean_ms"],
                r["ready_s"],
                f"{mb(worker.get('rss_kb'))} / {mb(worker.get('pss_kb'))}",
                f"{mb(server.get('rss_kb'))} / {mb(server.get('pss_kb'))}",
                r["fork_warnings"],
            ]
        )
    header = [
        "children forked from",
        "median ms / file",
        "mean ms / file",
        "s until the first file",
        "worker RSS / PSS MB",
        "server RSS / PSS MB",
        "lancedb fork warnings",
    ]
    body = (
        f"{len(files)} corpus files ({args.per_format} smallest per format of {', '.join(_FORMATS)}), "
        f"{args.repeat} runs each, bounded extraction as the workers run it; each mode in a fresh process "
        "that first used deltalake and LanceDB.\n\n" + markdown_table(header, rows)
    )
    report("Extraction sandbox: clean server vs forking the worker", body, append_to=BENCH_DOC if args.append else None)
    return results


if __name__ == "__main__":
    main()
