"""Embedding throughput of the backends on the same texts in the same run: torch fp32, ONNX fp32, ONNX int8.

Rounds are interleaved (torch, onnx, onnx-int8, torch, …) so load from other work on this shared
machine hits every backend alike; the best round of each backend is reported, and its ratio to torch.

    .venv/bin/python bench/embed_throughput.py --texts 512 --rounds 3 --append

Texts are SciFact abstracts (title + text, most longer than the 256-token window, so every text
costs a full window — the pipeline's chunks are up to 256 tokens too). ``--tiny`` embeds 8 texts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report

BACKENDS = ("torch", "onnx", "onnx-int8")


def load_texts(n: int) -> list[str]:
    import json

    texts = []
    with (SHARED / "benchmarks" / "scifact" / "corpus.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            texts.append(f"{row.get('title', '')}\n\n{row.get('text', '')}".strip())
            if len(texts) >= n:
                break
    return texts


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="repeatable; default all")
    parser.add_argument("--tiny", action="store_true", help="8 texts, 1 round")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    args = parser.parse_args(argv)
    if args.tiny:
        args.texts, args.rounds = 8, 1

    import os

    from pipelines.embed.model import EmbedConfig, Embedder
    from pipelines.settings import Settings

    settings = Settings()
    texts = load_texts(args.texts)
    threads = args.threads or os.cpu_count() or 1
    embedders = {
        b: Embedder(
            EmbedConfig(
                model_path=settings.resolved_model_path(),
                model_id=settings.model_id,
                batch_size=args.batch_size,
                threads=threads,
                backend=b,  # type: ignore[arg-type]  # argparse choices are the Literal values
                cache_dir=settings.resolved_embed_cache_dir(),
            )
        )
        for b in args.backend or BACKENDS
    }
    for e in embedders.values():
        e.encode(texts[: args.batch_size])  # load, export on first use, warm up
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, e in embedders.items():
            t0 = time.perf_counter()
            e.encode(texts)
            rate = len(texts) / (time.perf_counter() - t0)
            best[name] = max(best.get(name, 0.0), rate)
    base = best.get("torch")
    rows = [[b, round(r, 1), f"{r / base:.2f}x" if base else "—"] for b, r in best.items()]
    body = (
        f"{len(texts)} SciFact abstracts (≤ 256 tokens each after truncation), batch {args.batch_size}, "
        f"{threads} threads, best of {args.rounds} interleaved rounds.\n\n"
        + markdown_table(["backend", "texts/s", "vs torch fp32"], rows)
    )
    report("Embedding throughput by backend", body, append_to=BENCH_DOC if args.append else None)
    return {b: {"texts_per_s": r} for b, r in best.items()}


if __name__ == "__main__":
    main()
