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
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import BENCH_DOC, REPO, SHARED, markdown_table, report, summary_ms
from bench.scifact import SciFact, load_scifact
from pipelines.contracts.documents import Chunk, ChunkerConfig, ExtractedDocument, VectorRecord
from pipelines.contracts.ids import sha256_hex
from pipelines.evaluation.metrics import best_chunk_ranking, mean_metrics

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
        np.savez(tmp, **self.vectors)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
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
    parser.add_argument(
        "--rerank-latency", action="store_true", help="only time the rerank stage (MiniLM-L6-sized cross-encoder)"
    )
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
        if args.rerank_latency:
            print(json.dumps(rerank_latency(data, docs)))
            return
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
        results = experiments(rt, data, docs, chunks, cache)
    render(results, data, args)


Candidates = dict[str, tuple[list[Any], list[Any]]]  # query id -> (dense hits, keyword hits), best first


def candidates(
    data: SciFact,
    chunks: dict[str, list[Chunk]],
    strings: dict[str, list[str]],
    cache: VectorCache,
    queries: dict[str, list[float]],
    *,
    workdir: Path,
) -> tuple[Candidates, dict[str, list[float]], dict[str, float]]:
    """Top-DEPTH dense and keyword chunks of every query from a real LanceDB store of these vectors.

    Returns the candidates, every chunk's vector by id (for MMR) and per-query retrieval times (ms).
    """
    from pipelines.vectorstore.lance import LanceVectorStore

    store = LanceVectorStore(workdir)
    records = []
    vectors: dict[str, list[float]] = {}
    for d, cs in chunks.items():
        for c, text in zip(cs, strings[d], strict=True):
            cid = f"{d}:{c.ordinal}"
            vec = cache.vectors[sha256_hex(text)].tolist()
            vectors[cid] = vec
            records.append(VectorRecord(id=cid, tenant="default", doc_id=d, doc_version=1, vector=vec, text=c.text))
    for start in range(0, len(records), 2000):
        store.upsert(records[start : start + 2000])
    store.optimize()
    out: Candidates = {}
    dense_ms: list[float] = []
    keyword_ms: list[float] = []
    for qid, text in data.queries.items():
        t0 = time.perf_counter()
        dense = store.query(queries[qid], k=DEPTH, tenant="default")
        t1 = time.perf_counter()
        keyword = store.keyword_query(text, k=DEPTH, tenant="default")
        t2 = time.perf_counter()
        dense_ms.append(t1 - t0)
        keyword_ms.append(t2 - t1)
        out[qid] = (dense, keyword)
    timing = {"dense_p50_ms": summary_ms(dense_ms)["p50_ms"], "keyword_p50_ms": summary_ms(keyword_ms)["p50_ms"]}
    return out, vectors, timing


def score_setting(
    data: SciFact,
    cands: Candidates,
    vectors: dict[str, list[float]],
    *,
    mode: str,
    config: Any,
    depth: int = DEPTH,
    top_k: int = DEPTH,
    collapse: bool = False,
    mmr: float | None = None,
) -> dict[str, float]:
    """nDCG@10 / Recall@10 of one setting, ranked by ``pipelines.serve.search.rank`` (what /v1/search runs).

    ``depth`` truncates each candidate list (what a service with that depth would have fetched);
    ``top_k`` is how many chunks the query asks for.
    """
    from pipelines.contracts.search import SearchQuery
    from pipelines.serve.search import rank

    runs: dict[str, list[str]] = {}
    spent: list[float] = []
    for qid, text in data.queries.items():
        dense, keyword = cands[qid]
        query = SearchQuery(query=text, top_k=top_k, mode=mode, collapse_duplicates=collapse, mmr=mmr)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        hits = rank(
            query,
            mode,  # type: ignore[arg-type]
            dense[:depth],
            keyword[:depth],
            config=config,
            vectors_of=lambda ids: {i: vectors[i] for i in ids},
        )
        spent.append(time.perf_counter() - t0)
        runs[qid] = best_chunk_ranking([h.record.doc_id for h in hits])
    scores = mean_metrics(runs, data.qrels, k=10)
    scores["rank_p50_ms"] = summary_ms(spent)["p50_ms"]
    return scores


def experiments(
    rt: Any, data: SciFact, docs: dict[str, ExtractedDocument], chunks: dict[str, list[Chunk]], cache: VectorCache
) -> list[dict[str, Any]]:
    from pipelines.contracts.search import RankConfig

    qvec_cache = VectorCache(f"queries_{rt.index().embed_backend}")
    qtexts = list(data.queries.values())
    qvecs = qvec_cache.encode(rt.query_embedder(), qtexts)
    queries = dict(zip(data.queries, qvecs, strict=True))
    rows: list[dict[str, Any]] = []
    configs: dict[str, Any] = {}

    def add(variant: str, setting: str, scores: dict[str, float], **extra: Any) -> None:
        row = {"embedded": variant, "setting": setting, **{k: round(v, 4) for k, v in scores.items()}, **extra}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    for variant, context in (("raw", False), ("title+headings", True)):
        strings = embedded_strings(docs, chunks, context=context)
        with tempfile.TemporaryDirectory(prefix="ranking-store-") as tmp:
            cands, vectors, timing = candidates(data, chunks, strings, cache, queries, workdir=Path(tmp))
        base = RankConfig(fusion="rrf", rrf_k=60, dense_weight=1.0, keyword_weight=1.0)  # hybrid before issue 19
        add(variant, "dense", score_setting(data, cands, vectors, mode="dense", config=base), **timing)
        if variant == "raw":
            add(variant, "keyword", score_setting(data, cands, vectors, mode="keyword", config=base))
        configs["hybrid rrf k=60 1:1 (before)"] = base
        add(variant, "hybrid rrf k=60 1:1 (before)", score_setting(data, cands, vectors, mode="hybrid", config=base))
        for k in (10, 30, 60, 100):
            for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0):
                cfg = RankConfig(fusion="rrf", rrf_k=k, dense_weight=w, keyword_weight=1.0)
                configs[f"hybrid rrf k={k} dense:keyword={w}:1"] = cfg
                add(
                    variant,
                    f"hybrid rrf k={k} dense:keyword={w}:1",
                    score_setting(data, cands, vectors, mode="hybrid", config=cfg),
                )
        for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            cfg = RankConfig(fusion="score", dense_weight=a, keyword_weight=round(1 - a, 2))
            configs[f"hybrid score dense:keyword={a}:{round(1 - a, 2)}"] = cfg
            add(
                variant,
                f"hybrid score dense:keyword={a}:{round(1 - a, 2)}",
                score_setting(data, cands, vectors, mode="hybrid", config=cfg),
            )
        # The best fusion of this variant, then what depth, collapsing and MMR do to it.
        fused = [r for r in rows if r["embedded"] == variant and r["setting"].startswith("hybrid")]
        best = max(fused, key=lambda r: r["ndcg@10"])
        cfg = configs[best["setting"]]
        for depth in (20, 50, 100):
            scores = score_setting(data, cands, vectors, mode="hybrid", config=cfg, depth=depth, top_k=10)
            add(variant, f"{best['setting']}, depth {depth}, top_k 10", scores)
        for mode in ("dense", "hybrid"):
            scores = score_setting(data, cands, vectors, mode=mode, config=cfg, collapse=True)
            add(variant, f"{mode if mode == 'dense' else best['setting']} + collapse", scores)
        for lam in (0.9, 0.7, 0.5):
            scores = score_setting(data, cands, vectors, mode="hybrid", config=cfg, top_k=30, collapse=True, mmr=lam)
            add(variant, f"{best['setting']} + collapse + MMR λ={lam} (top_k 30)", scores)
    return rows


def rerank_latency(
    data: SciFact, docs: dict[str, ExtractedDocument], *, queries: int = 20, depth: int = 30
) -> dict[str, Any]:
    """Time of the rerank stage with a cross-encoder of MiniLM-L6's size (what ms-marco-MiniLM-L-6-v2 costs).

    No real reranker weights are available here, so the model is the packaged all-MiniLM-L6-v2 encoder
    under a random one-output head: its scores mean nothing, its speed is the architecture's.
    """
    import shutil

    from pipelines.serve.rerank import load_reranker, rerank_hits
    from pipelines.settings import Settings
    from pipelines.vectorstore.base import VectorHit

    packaged = Settings().resolved_model_path()
    with tempfile.TemporaryDirectory(prefix="minilm-cross-") as tmp:
        folder = Path(tmp)
        for name in (
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
            "special_tokens_map.json",
        ):
            shutil.copy(packaged / name, folder / name)
        config = json.loads((packaged / "config.json").read_text())
        config.update(architectures=["BertForSequenceClassification"], num_labels=1)
        (folder / "config.json").write_text(json.dumps(config))
        reranker = load_reranker(folder)
        # Chunk-sized candidates (~200 tokens): what search hands the reranker.
        texts = [doc.text[:1000] for doc in list(docs.values())[:depth]]
        hits = [
            VectorHit(
                record=VectorRecord(id=str(i), tenant="t", doc_id=str(i), doc_version=1, vector=[], text=t), score=0.0
            )
            for i, t in enumerate(texts)
        ]
        spent = []
        for text in list(data.queries.values())[:queries]:
            t0 = time.perf_counter()
            rerank_hits(text, hits, reranker, depth=depth)
            spent.append(time.perf_counter() - t0)
    return {"queries": queries, "candidates": depth, **summary_ms(spent)}


def render(rows: list[dict[str, Any]], data: SciFact, args: argparse.Namespace) -> None:
    table = markdown_table(
        ["embedded text", "setting", "nDCG@10", "Recall@10", "rank p50 ms"],
        [[r["embedded"], r["setting"], r["ndcg@10"], r["recall@10"], r["rank_p50_ms"]] for r in rows],
    )
    body = (
        f"{len(data.queries)} queries, {len(data.corpus)} abstracts chunked as the pipeline chunks them,"
        f" {args.backend}, top {DEPTH} dense and keyword candidates per query from LanceDB, ranked in-process"
        " by pipelines.serve.search.rank; documents by their best chunk.\n\n" + table
    )
    report("SciFact ranking experiments (in-process)", body, append_to=BENCH_DOC if args.append else None)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
