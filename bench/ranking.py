"""Ranking experiments on SciFact (issue 19): fusion, candidate depth, contextual embeddings, collapse, MMR.

Fast and in-process, so many settings can be compared on one embedding of the corpus:

1. every abstract is extracted and chunked exactly as the pipeline does (``extract_unbounded`` on the
   same ``title\\n\\ntext`` file the pipeline bench uploads, ``chunk_document`` with the index's config);
2. each chunk's embedded string (raw, or with context: ``embedding_text``) is encoded once with the
   chosen backend and cached under ``.cache/bench/`` by its sha256, reused by later runs;
3. the vectors go into a real ``LanceVectorStore`` (with its BM25 index), one per variant, and every
   test claim's dense and keyword candidates (top 100 chunks each) are fetched once;
4. each ranking setting is applied with ``pipelines.serve.search.rank`` — the function ``/v1/search``
   runs on the same candidates — and scored (documents by their best chunk, nDCG@10 / Recall@10).

The through-the-pipeline figure is ``bench/scifact.py`` (``doclake up``, /v1/search).

    .venv/bin/python bench/ranking.py --append
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import BENCH_DOC, REPO, SHARED
from bench.scifact import SciFact, load_scifact
from pipelines.contracts.documents import Chunk, ChunkerConfig, ExtractedDocument
from pipelines.contracts.ids import sha256_hex

CACHE = REPO / ".cache" / "bench"
DEPTH = 100


def extracted(data: SciFact) -> dict[str, ExtractedDocument]:
    """Every abstract as the pipeline's extraction sees its uploaded file (cached: extraction is not under test)."""
    from pipelines.extract.extractor import extract_unbounded

    path = CACHE / f"scifact_extracted_{len(data.corpus)}.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return {r["id"]: ExtractedDocument.model_validate(r["doc"]) for r in rows}
    docs = {
        d: extract_unbounded(data.document(d).encode(), doc_id=f"scifact-{d}", filename=f"{d}.txt") for d in data.corpus
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps({"id": d, "doc": doc.model_dump(mode="json")}) + "\n" for d, doc in docs.items())
    )
    return docs


class VectorCache:
    """Vectors by sha256 of the embedded string, for one backend, in one .npz file under CACHE."""

    def __init__(self, backend: str) -> None:
        self.path = CACHE / f"vectors_{backend}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self.vectors = {k: z[k] for k in z.files}

    def encode(self, embedder: Any, texts: list[str]) -> list[list[float]]:
        keys = [sha256_hex(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items())
        if todo:
            print(f"encoding {len(todo)} texts", file=sys.stderr, flush=True)
            for start in range(0, len(todo), 512):
                part = todo[start : start + 512]
                for (k, _), v in zip(part, embedder.encode([t for _, t in part]), strict=True):
                    self.vectors[k] = np.asarray(v, dtype=np.float32)
                self.save()
                print(f"  {start + len(part)}/{len(todo)}", file=sys.stderr, flush=True)
        return [self.vectors[k].tolist() for k in keys]

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.vectors)
        tmp.replace(self.path)


def chunks_of(docs: dict[str, ExtractedDocument], tokenizer: Any, config: ChunkerConfig) -> dict[str, list[Chunk]]:
    from pipelines.embed.chunker import chunk_document

    return {d: chunk_document(doc, tokenizer=tokenizer, config=config) for d, doc in docs.items()}


def embedded_strings(
    docs: dict[str, ExtractedDocument], chunks: dict[str, list[Chunk]], *, context: bool
) -> dict[str, list[str]]:
    """The strings the pipeline would embed: ``plan_chunks`` calls ``embedding_text`` the same way."""
    from pipelines.embed.chunker import document_title, embedding_text

    if not context:
        return {d: [c.text for c in cs] for d, cs in chunks.items()}
    return {d: [embedding_text(c, title=document_title(docs[d])) for c in cs] for d, cs in chunks.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "benchmarks" / "scifact", help="BEIR folder")
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--prepare-only", action="store_true", help="extract, chunk and embed; search nothing")
    parser.add_argument("--tiny", action="store_true", help="5 queries, ~30 abstracts (smoke run)")
    parser.add_argument("--append", action="store_true", help=f"append the results to {BENCH_DOC}")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results as JSON here")
    args = parser.parse_args(argv)

    from pipelines.runtime import Runtime
    from pipelines.settings import Settings

    data = load_scifact(args.data, tiny=args.tiny)
    with tempfile.TemporaryDirectory(prefix="ranking-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", embed_backend=args.backend)  # type: ignore[arg-type]
        rt = Runtime.from_settings(settings)
        docs = extracted(data)
        titles = sum(1 for doc in docs.values() if doc.elements and doc.elements[0].kind.value == "title")
        print(f"{len(docs)} documents, {titles} start with a title element", file=sys.stderr)
        chunks = chunks_of(docs, rt.tokenizer(), settings.chunker)
        cache = VectorCache(args.backend)
        embedder = rt.embedder()
        for context in (False, True):
            strings = embedded_strings(docs, chunks, context=context)
            cache.encode(embedder, [s for ss in strings.values() for s in ss])
        if args.prepare_only:
            return
        results = experiments(rt, data, chunks, cache, backend=args.backend)
    render(results, data, args)


def experiments(rt: Any, data: SciFact, chunks: dict[str, list[Chunk]], cache: VectorCache, *, backend: str) -> Any:
    raise NotImplementedError


def render(results: Any, data: SciFact, args: argparse.Namespace) -> None:
    raise NotImplementedError


if __name__ == "__main__":
    main()
