"""Embedding with sentence-transformers, loaded offline from a local folder (never from a hub).

One model per process, loaded on first use: importing this module costs nothing, so the API and
the CLI start without torch until they actually embed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipelines.errors import EmbeddingError

__all__ = [
    "EmbedBackend",
    "EmbedConfig",
    "Embedder",
    "get_embedder",
    "get_query_embedder",
    "load_tokenizer",
]

EmbedBackend = Literal["torch", "onnx", "onnx-int8"]

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
    backend: EmbedBackend = Field(default="torch", description="torch (sentence-transformers) or ONNX fp32/int8.")
    cache_dir: Path | None = Field(default=None, description="Where ONNX exports are cached (onnx backends only).")
    role: Literal["ingest", "query"] = Field(
        default="ingest", description="Separate roles get separate model instances (see get_query_embedder)."
    )


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
        if self.config.backend != "torch":
            from pipelines.embed.onnx import OnnxModel

            if self.config.cache_dir is None:
                raise EmbeddingError(f"the {self.config.backend} backend needs a cache_dir for its exported model")
            return OnnxModel(
                self.config.model_path, self.config.cache_dir, self.config.backend, threads=self.config.threads
            )
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            if self.config.threads:
                torch.set_num_threads(self.config.threads)
            return SentenceTransformer(str(self.config.model_path), device="cpu")
        except Exception as e:
            raise EmbeddingError(f"cannot load model from {self.config.model_path}: {e}") from e

    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def dim(self) -> int:
        if self.config.backend != "torch":
            return int(self.model.dim)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: list[str], *, token_ids: Sequence[list[int] | None] | None = None) -> list[list[float]]:
        """Unit-length vectors for ``texts``, in order.

        Both backends sort a call's texts by length before batching (sentence-transformers does it
        inside ``encode``; the ONNX path does it itself), so padding is small. ``token_ids`` may give a
        text's token ids without special tokens, exactly as the model's tokenizer gives them (the chunker
        counted them): the ONNX backends then skip tokenizing it again; torch tokenizes anyway.
        """
        if not texts:
            return []
        try:
            if self.config.backend != "torch":
                vectors = self.model.encode(texts, batch_size=self.config.batch_size, token_ids=token_ids)
            else:
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


def get_query_embedder(config: EmbedConfig) -> Embedder:
    """The embedder for search queries: its own model instance, never the one bulk ingestion uses.

    In inline mode (and in any process that both ingests and serves), a long ``encode`` of a
    document's chunks would otherwise be the same object a query needs; a separate instance (a
    separate ``get_embedder`` cache entry, keyed by ``role``) lets a one-text query run alongside
    it. In ``doclake up`` the API and the workers are separate processes anyway.
    """
    return get_embedder(config.model_copy(update={"role": "query"}))


@lru_cache(maxsize=4)
def load_tokenizer(model_path: Path) -> Any:
    """The model's tokenizer alone (no weights): the chunker counts tokens with it."""
    with _IMPORT_LOCK:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(model_path))


# (id of the transformers tokenizer, max_length) -> (that tokenizer, kept alive so its id is not reused; its copy)
