"""Reranking with a cross-encoder the operator supplies (``DOCLAKE_RERANK_MODEL``, a local folder).

A cross-encoder reads the query and a chunk together, so it judges relevance better than the cosine of
two independent vectors, at the price of one model pass per candidate. doclake ships no reranker
weights (no package here carries real ones, and one that was trained on SciFact's test split must not
be used to report SciFact figures), so the stage is off unless a model folder is configured.

The folder is a sentence-transformers ``CrossEncoder`` (or a Hugging Face sequence-classification model
with its tokenizer), loaded offline on CPU. A missing folder or one that does not load is refused with
``RerankerUnavailable``: when the service starts (``doclake serve`` loads it before taking requests) and,
for a query asking ``rerank`` with no model configured, as a 422.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.errors import RerankerUnavailable
from pipelines.vectorstore.base import VectorHit

__all__ = ["CrossEncoderReranker", "load_reranker", "rerank_hits"]


class CrossEncoderReranker:
    """A loaded cross-encoder: ``score(query, texts)`` gives one relevance score per text."""

    def __init__(self, path: Path, model: Any) -> None:
        self.path = path
        self._model = model
        # torch modules are not re-entrant across threads; the API's threadpool calls this concurrently.
        self._lock = threading.Lock()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        with self._lock:
            scores = self._model.predict([(query, t) for t in texts], batch_size=32, show_progress_bar=False)
        return [float(s) for s in scores]


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise RerankerUnavailable(f"rerank model folder {path} does not exist (DOCLAKE_RERANK_MODEL)")
    if not (path / "config.json").is_file():
        raise RerankerUnavailable(f"rerank model folder {path} has no config.json: not a Hugging Face model folder")


@lru_cache(maxsize=4)
def load_reranker(path: Path) -> CrossEncoderReranker:
    """The cross-encoder in ``path``, loaded once per process (offline, CPU).

    Raises:
        RerankerUnavailable: no such folder, or the model in it cannot be loaded.
    """
    _check_folder(path)
    try:
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(str(path), device="cpu", local_files_only=True)
        model.predict([("check", "check")], show_progress_bar=False)  # fail now on weights that cannot run
    except Exception as e:  # transformers raises OSError, ValueError, RuntimeError … for a broken folder
        raise RerankerUnavailable(f"rerank model in {path} cannot be loaded: {type(e).__name__}: {e}") from e
    return CrossEncoderReranker(path, model)


def rerank_hits(
    query: str, hits: Sequence[VectorHit], reranker: CrossEncoderReranker, *, depth: int
) -> list[VectorHit]:
    """The first ``depth`` hits reordered by the cross-encoder's score (which becomes their score), the
    rest after them in their earlier order. Ties keep the earlier order."""
    head, tail = list(hits[:depth]), list(hits[depth:])
    scores = reranker.score(query, [h.record.text for h in head])
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # sorted() is stable
    reranked = [VectorHit(record=head[i].record, score=scores[i]) for i in order]
    return reranked + tail
