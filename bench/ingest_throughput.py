"""Ingest throughput: chunks/s end to end through the real pipeline next to the raw encode rate.

Starts `doclake up` (API → Celery workers → gold → LanceDB), uploads a fixed set of files from
../shared/corpus at once and times first upload → last document indexed. Then, in this process, it
embeds exactly the chunk texts the pipeline stored, with the same backend and every core, and
reports the ratio (goal: pipeline ≥ 0.8 of raw). Ratios, not absolute times, are the result on a
shared machine.

    .venv/bin/python bench/ingest_throughput.py --backend torch --append
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report, stack, upload_all_and_wait
from bench.cpu import CpuUse, cpu_table, measure_cpu

DEFAULT_FILES = [
    "md/unst__CHANGELOG.md",
    "md/taocl__README.md",
    "md/taocl__README-ru.md",
    "md/taocl__README-ja.md",
    "md/mdtest__TEST.md",
    "md/readability__README.md",
    "txt/unst__norwich-city.txt",
    "txt/unst__UDHR_first_article_all.txt",
]
TINY_FILES = ["md/readability__README.md", "txt/unst__book-war-and-peace-1p.txt"]


@contextmanager
def stack_environ(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment set to a stack's doclake and AWS variables, restored on exit.

    Settings and the storage layer read ``DOCLAKE_*`` and ``AWS_*`` from the environment, so this is how
    the bench opens the same lake (local or on S3) as the stack it started.
    """
    keys = [k for k in env if k.startswith(("DOCLAKE_", "AWS_"))]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stored_chunk_texts(env: Mapping[str, str], doc_ids: Iterable[str]) -> list[str]:
    """The chunk texts of ``doc_ids`` in the active index's gold table of the stack run with ``env``."""
    from pipelines.runtime import Runtime
    from pipelines.settings import Settings

    wanted = set(doc_ids)
    with stack_environ(env):
        runtime = Runtime.from_settings(Settings())
        gold = runtime.lake.read(runtime.index().gold, columns=["doc_id", "text"])
    pairs = zip(gold.column("doc_id").to_pylist(), gold.column("text").to_pylist(), strict=True)
    return [text for doc_id, text in pairs if doc_id in wanted]


def measure_pipeline(s: object, files: list[tuple[str, str, bytes]]) -> tuple[float, dict[str, int], list[str], CpuUse]:
    """Warm the stack ``s`` with one small upload, upload ``files`` at once and wait for all of them.

    Returns (seconds from the first upload to the last document done, documents by status, the chunk
    texts the pipeline stored for ``files``, the CPU the machine's processes spent meanwhile).
    """
    client = s.client  # type: ignore[attr-defined]
    client.upload_and_wait(b"# warm\n\nwarm up the workers", filename="warm.md")
    with measure_cpu() as cpu:
        pipeline_s, statuses = upload_all_and_wait(client, files)
    texts = stored_chunk_texts(s.env, [doc_id for doc_id, _, _ in files])  # type: ignore[attr-defined]
    return pipeline_s, statuses, texts, cpu[0]


def raw_encode_seconds(texts: list[str], *, backend: str) -> tuple[float, float]:
    """Seconds to embed ``texts`` in this process with ``backend`` and every core (after a warm-up batch),
    and the CPU seconds that took."""
    from pipelines.embed.model import EmbedConfig, Embedder
    from pipelines.settings import Settings

    settings = Settings()
    raw = Embedder(
        EmbedConfig(
            model_path=settings.resolved_model_path(),
            model_id=settings.model_id,
            batch_size=settings.embed_batch_size,
            threads=os.cpu_count(),
            backend=backend,
            cache_dir=settings.resolved_embed_cache_dir(),
        )
    )
    raw.encode(texts[:8])
    t0, cpu0 = time.perf_counter(), time.process_time()
    raw.encode(texts)
    return time.perf_counter() - t0, time.process_time() - cpu0


def cpu_note(cpu: CpuUse, *, raw_s: float, raw_cpu_s: float) -> str:
    """Where the cores went during the pipeline's window, beside what the raw encode of the same chunks took."""
    budget = raw_s / 0.9 * cpu.cores
    return (
        f"Where the cores went from the first upload to the last document indexed ({cpu.wall_s:.2f} s on "
        f"{cpu.cores} cores; the raw encode of the same chunks took {raw_cpu_s:.2f} CPU s in {raw_s:.2f} s, "
        f"and a pipeline at 0.9 of it has {budget:.2f} core-s for everything):\n\n"
        + markdown_table(["process", "CPU s", "share of busy"], cpu_table(cpu))
    )


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--file", action="append", help="path under --corpus (repeatable); default: a fixed set")
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--tiny", action="store_true", help="two small files")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    names = args.file or (TINY_FILES if args.tiny else DEFAULT_FILES)

    from pipelines.settings import Settings

    settings = Settings()
    env = {"DOCLAKE_EMBED_BACKEND": args.backend, "DOCLAKE_EMBED_CACHE_DIR": str(settings.resolved_embed_cache_dir())}
    files = [(f"tp{i}", Path(n).name, (args.corpus / n).read_bytes()) for i, n in enumerate(names)]
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp, stack(Path(tmp), env=env) as s:
        pipeline_s, statuses, texts, cpu = measure_pipeline(s, files)
    raw_s, raw_cpu_s = raw_encode_seconds(texts, backend=args.backend)
    pipeline_rate, raw_rate = len(texts) / pipeline_s, len(texts) / raw_s
    rows = [[len(files), len(texts), round(pipeline_rate, 2), round(raw_rate, 2), round(pipeline_rate / raw_rate, 2)]]
    body = (
        f"Backend {args.backend}; files: {', '.join(names)}; statuses {statuses}.\n\n"
        + markdown_table(["files", "chunks", "pipeline chunks/s", "raw encode chunks/s", "pipeline / raw"], rows)
        + "\n\n"
        + cpu_note(cpu, raw_s=raw_s, raw_cpu_s=raw_cpu_s)
    )
    report("Ingest throughput: pipeline vs raw encode", body, append_to=BENCH_DOC if args.append else None)
    return {
        "pipeline_chunks_per_s": pipeline_rate,
        "raw_chunks_per_s": raw_rate,
        "chunks": len(texts),
        "cpu": cpu.model_dump(),
        "raw_cpu_s": raw_cpu_s,
    }


if __name__ == "__main__":
    main()
