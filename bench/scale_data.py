"""Real-like vectors for the scale benchmarks: real chunk embeddings, and more rows drawn from them.

Real rows are 60-word pieces of SciFact abstracts (title first) and of the text files in
../shared/corpus, embedded with the packaged model; real queries are SciFact's claims. Both are cached
under ``.cache/bench/`` (keyed by model, backend and row count), so only the first run pays for
embedding.

Rows beyond the real ones are *mixtures* of real vectors, so they keep the real distribution's
directions and neighbourhood structure: for a synthetic row, pick a real vector ``a`` and another real
vector ``b``, draw ``w ~ U(0, 0.35)`` and Gaussian noise ``e`` with ``||e|| ≈ 0.45``, and take
``normalize((1 - w) a + w b + e)``. ``neighbour_profile`` compares the cosine of each row's nearest
neighbour in a real sample with that in a generated sample, which docs/benchmarks.md reports next to
the results.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from bench.common import REPO, SHARED

__all__ = ["expand", "neighbour_profile", "query_texts", "query_vectors", "real_texts", "real_vectors"]

CACHE = REPO / ".cache" / "bench"
_WORDS = 60
_NOISE = 0.45
_MAX_MIX = 0.35


def real_texts(limit: int) -> list[str]:
    """Up to ``limit`` real chunk texts: SciFact abstracts, then the corpus' text and markdown files."""
    pieces: list[str] = []

    def cut(text: str) -> None:
        words = text.split()
        pieces.extend(" ".join(words[i : i + _WORDS]) for i in range(0, len(words), _WORDS) if words[i:])

    with (SHARED / "benchmarks/scifact/corpus.jsonl").open() as f:
        for line in f:
            doc = json.loads(line)
            cut(f"{doc.get('title', '')}. {doc.get('text', '')}")
            if len(pieces) >= limit:
                return pieces[:limit]
    for folder in ("txt", "md"):
        for path in sorted((SHARED / "corpus" / folder).glob("*")):
            if path.is_file():
                cut(path.read_text(errors="replace"))
            if len(pieces) >= limit:
                return pieces[:limit]
    return pieces


def query_texts(limit: int | None = None) -> list[str]:
    """SciFact's claims, in file order."""
    lines = (SHARED / "benchmarks/scifact/queries.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return texts[:limit] if limit else texts


def _embedder(backend: str) -> object:
    from pipelines.embed.model import EmbedConfig, Embedder
    from pipelines.settings import Settings

    settings = Settings()
    return Embedder(
        EmbedConfig(
            model_path=settings.resolved_model_path(),
            model_id=settings.model_id,
            backend=backend,  # type: ignore[arg-type]  # validated by the model
            cache_dir=settings.resolved_embed_cache_dir(),
        )
    )


def _cached(name: str, texts: list[str], backend: str) -> np.ndarray:
    key = hashlib.sha256(("\n".join(texts) + backend).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{backend}-{len(texts)}-{key}.npy"
    if path.exists():
        cached: np.ndarray = np.load(path)
        return cached
    embedder = _embedder(backend)
    t0 = time.perf_counter()
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)  # type: ignore[attr-defined]
    print(f"embedded {len(texts)} {name} texts with {backend} in {time.perf_counter() - t0:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def real_vectors(limit: int, *, backend: str = "onnx-int8") -> tuple[np.ndarray, list[str]]:
    """(unit vectors, texts) of up to ``limit`` real chunks."""
    texts = real_texts(limit)
    vectors = _cached("chunks", texts, backend)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), texts


def query_vectors(limit: int | None = None, *, backend: str = "onnx-int8") -> tuple[np.ndarray, list[str]]:
    """(unit vectors, texts) of SciFact's claims."""
    texts = query_texts(limit)
    vectors = _cached("queries", texts, backend)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), texts


def expand(real: np.ndarray, rows: int, *, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """``rows`` unit vectors: the real ones first, then mixtures of real ones plus noise (module doc)."""
    if rows <= len(real):
        return real[:rows].copy()
    rng = np.random.default_rng(seed)
    out = np.empty((rows, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    sigma = _NOISE / np.sqrt(real.shape[1])
    for start in range(len(real), rows, block):
        n = min(block, rows - start)
        a = real[rng.integers(0, len(real), n)]
        b = real[rng.integers(0, len(real), n)]
        w = rng.uniform(0, _MAX_MIX, (n, 1)).astype(np.float32)
        v = (1 - w) * a + w * b + rng.normal(0, sigma, (n, real.shape[1])).astype(np.float32)
        out[start : start + n] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def neighbour_profile(vectors: np.ndarray, *, sample: int = 500, seed: int = 0) -> dict[str, float]:
    """Quartiles of each sampled row's nearest-neighbour cosine within ``vectors``."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), min(sample, len(vectors)), replace=False)
    best = []
    for start in range(0, len(picks), 100):
        idx = picks[start : start + 100]
        scores = vectors[idx] @ vectors.T
        scores[np.arange(len(idx)), idx] = -2.0  # not itself
        best.append(scores.max(axis=1))
    nn = np.concatenate(best)
    return {f"p{p}": round(float(np.percentile(nn, p)), 3) for p in (25, 50, 75)}


def _main() -> None:
    real, _ = real_vectors(20_000)
    print(len(real), "real vectors; nearest-neighbour cosine", neighbour_profile(real))
    mixed = expand(real, 2 * len(real))
    print("as many drawn rows", neighbour_profile(mixed[len(real) :]))


if __name__ == "__main__":
    _main()
