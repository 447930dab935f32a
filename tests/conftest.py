"""Shared fixtures: one loaded model and one SparkSession per test session, fresh lakes per test, the real corpus.

Tests that use the ``spark`` fixture are marked ``spark`` (``-m "not spark"`` runs the rest without a JVM).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipelines.ingest.runner import process_inline
from tests.steps import process_one

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from pyspark.sql import SparkSession

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pipelines.embed.model import EmbedConfig, Embedder, get_embedder
from pipelines.runtime import Runtime
from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    return Path(os.environ.get("DOCLAKE_CORPUS", REPO.parent / "shared" / "corpus")).resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if not path.is_dir():
        pytest.skip(f"corpus not found at {path} (set DOCLAKE_CORPUS)")
    return path


@pytest.fixture(scope="session")
def embed_config() -> EmbedConfig:
    """What a new lake embeds with (the default backend, onnx-int8), so ``runtime`` reuses the session's model."""
    settings = Settings()
    backend = settings.new_lake_embed_backend
    return EmbedConfig(
        model_path=settings.resolved_model_path(),
        model_id=settings.embedding_model_id,
        batch_size=settings.embed_batch_size,
        backend=backend,
        cache_dir=settings.resolved_embed_cache_dir() if backend != "torch" else None,
    )


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The embedding model's tokenizer alone (no weights), which the chunker counts tokens with."""
    from pipelines.embed.model import load_tokenizer

    return load_tokenizer(Settings().resolved_model_path())


@pytest.fixture(scope="session")
def embedder(embed_config: EmbedConfig) -> Embedder:
    """The real all-MiniLM-L6-v2 on the default backend, loaded (exported on a fresh machine) once per session."""
    e = get_embedder(embed_config)
    e.encode(["warm up"])
    return e


@pytest.fixture(scope="session")
def torch_embedder(embed_config: EmbedConfig) -> Embedder:
    """The published model's exact vectors (sentence-transformers on torch), for tests that compare backends."""
    e = get_embedder(
        embed_config.model_copy(update={"backend": "torch", "cache_dir": None, "model_id": Settings().model_id})
    )
    e.encode(["warm up"])
    return e


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", extract_timeout_s=60, extract_memory_mb=1500)


@pytest.fixture()
def runtime(settings: Settings, embedder: Embedder) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings)
    assert rt.embedder() is embedder  # same config ⇒ the session's model, not a second load
    yield rt


@pytest.fixture()
def inline_api(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    """The API in-process, processing every upload synchronously with the pipeline steps the worker runs."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    holder: dict[str, TestClient] = {}

    def enqueue(tenant: str, doc_id: str, version: int) -> None:
        process_one(holder["c"].app.state.runtime, tenant, doc_id, version)  # type: ignore[attr-defined]

    def enqueue_batch(tenant: str, versions: dict[str, int]) -> None:
        process_inline(holder["c"].app.state.runtime, tenant, versions)  # type: ignore[attr-defined]

    with TestClient(create_app(settings, enqueue=enqueue, enqueue_batch=enqueue_batch)) as client:
        holder["c"] = client
        yield client


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """Local[2] Spark with Delta (and the Kafka source): started once (~10-35 s), shared by every Spark test."""
    from pipelines.lakehouse.spark import get_spark

    session = get_spark(Settings(), app_name="doclake-tests")
    yield session
    session.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
