"""The services one process needs, built once from Settings and passed to every pipeline function."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from filelock import FileLock

from pipelines.contracts import sha256_hex
from pipelines.embed import EmbedConfig, Embedder, get_embedder, load_tokenizer
from pipelines.errors import ConfigError
from pipelines.lakehouse.lake import Lake
from pipelines.objectstore import LocalObjectStore, ObjectStore, S3ObjectStore
from pipelines.settings import Settings
from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.lance import LanceVectorStore

__all__ = ["Runtime"]


def _object_store(settings: Settings) -> ObjectStore:
    if settings.object_store_url:
        return S3ObjectStore.from_url(
            settings.object_store_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
        )
    return LocalObjectStore(settings.objects_dir)


def _vector_store(settings: Settings) -> VectorStore:
    if settings.vector_store == "pinecone":
        from pipelines.vectorstore.pinecone import PineconeVectorStore

        if not settings.pinecone_api_key or not settings.pinecone_host:
            raise ConfigError("the pinecone vector store needs DOCLAKE_PINECONE_API_KEY and DOCLAKE_PINECONE_HOST")
        return PineconeVectorStore(api_key=settings.pinecone_api_key.get_secret_value(), host=settings.pinecone_host)
    return LanceVectorStore(settings.vectors_dir.resolve(), ann_index_min_rows=settings.ann_index_min_rows)


@dataclass
class Runtime:
    settings: Settings
    lake: Lake
    objects: ObjectStore
    vectors: VectorStore
    embed_config: EmbedConfig
    _ready: bool = field(default=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = None) -> Runtime:
        """Build the embedded-profile services under ``settings.data_dir`` and make sure the tables exist."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lake = Lake(settings.lake_dir.resolve(), lock_dir=settings.run_dir / "locks")
        runtime = cls(
            settings=settings,
            lake=lake,
            objects=_object_store(settings),
            vectors=_vector_store(settings),
            embed_config=EmbedConfig(
                model_path=settings.resolved_model_path(),
                model_id=settings.embedding_model_id,
                batch_size=settings.embed_batch_size,
                threads=threads if threads is not None else settings.torch_threads,
                backend=settings.embed_backend,
                cache_dir=settings.resolved_embed_cache_dir() if settings.embed_backend != "torch" else None,
            ),
        )
        lake.ensure_tables()
        return runtime

    def embedder(self) -> Embedder:
        return get_embedder(self.embed_config)

    def tokenizer(self) -> Any:
        return load_tokenizer(self.embed_config.model_path)

    @contextmanager
    def doc_lock(self, tenant: str, doc_id: str) -> Iterator[None]:
        """Serialise writers of one document across processes (register, steps, delete).

        Versions guard correctness; the lock keeps a delete from interleaving with a step that
        already checked the version but has not yet written gold or the vector store.
        """
        lock_dir = self.settings.run_dir / "locks" / "docs"
        os.makedirs(lock_dir, exist_ok=True)
        name = sha256_hex(f"{tenant}\x1f{doc_id}")[:32] + ".lock"
        with FileLock(str(lock_dir / name), timeout=600):
            yield
