"""Embedding with sentence-transformers, loaded offline from a local folder (never from a hub).

One model per process, loaded on first use: importing this module costs nothing, so the API and
the CLI start without torch until they actually embed.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pipelines.errors import EmbeddingError

__all__ = ["EmbedConfig", "Embedder", "get_embedder", "load_tokenizer"]

# Offline by construction: a missing file must fail loudly, not trigger a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# transformers resolves its classes lazily on first attribute access; two threads doing that at once
# (the warm-up thread loading the model, a task loading the tokenizer) can see a half-initialised
# module and fail with "cannot import name 'AutoTokenizer'". One lock around every first use.
_IMPORT_LOCK = threading.RLock()


class EmbedConfig(BaseModel):
    model_config = {"frozen": True, "protected_namespaces": ()}

    model_path: Path = Field(description="Folder of a sentence-transformers model.")
    model_id: str = Field(description="Id recorded on gold rows; the embedding cache is keyed by it.")
    batch_size: int = Field(default=32, ge=1, description="Texts per forward pass.")
    threads: int | None = Field(default=None, description="torch intra-op threads; None keeps torch's default.")


class Embedder:
    """A loaded model plus a counter of texts it embedded (tests and metrics read it)."""

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self.embedded_total = 0
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        with _IMPORT_LOCK:
            return self._load_unlocked()

    def _load_unlocked(self) -> Any:
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            if self.config.threads:
                torch.set_num_threads(self.config.threads)
            return SentenceTransformer(str(self.config.model_path), device="cpu")
        except Exception as e:
            raise EmbeddingError(f"cannot load model from {self.config.model_path}: {e}") from e

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``, in order.

        sentence-transformers sorts a call's texts by length before batching, so padding is small.
        """
        if not texts:
            return []
        try:
            vectors = self.model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as e:
            raise EmbeddingError(f"encoding {len(texts)} texts failed: {e}") from e
        with self._lock:
            self.embedded_total += len(texts)
        result: list[list[float]] = vectors.astype("float32").tolist()
        return result

    def encode_query(self, text: str) -> list[float]:
        return self.encode([text])[0]


@lru_cache(maxsize=4)
def get_embedder(config: EmbedConfig) -> Embedder:
    """The process-wide embedder for a config (one loaded model per process)."""
    return Embedder(config)


@lru_cache(maxsize=4)
def load_tokenizer(model_path: Path) -> Any:
    """The model's tokenizer alone (no weights): the chunker counts tokens with it."""
    with _IMPORT_LOCK:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(model_path))
