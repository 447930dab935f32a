"""The ONNX Runtime backends give the torch path's vectors (fp32 exactly, int8 closely)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.embed.model import EmbedConfig, Embedder
from pipelines.embed.onnx import export_onnx
from pipelines.settings import Settings

TEXTS = [
    "hello world",
    "Vitamin D supplementation and the risk of hip fractures in older adults.",
    "The quick brown fox jumps over the lazy dog. " * 40,  # longer than 256 tokens: truncated
    "x",
    "Celery workers take tasks from the broker and write gold rows to Delta Lake.",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def _onnx(embed_config: EmbedConfig, cache: Path, backend: str) -> Embedder:
    return Embedder(embed_config.model_copy(update={"backend": backend, "cache_dir": cache, "batch_size": 2}))


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.99), ("onnx-int8", 0.97)])
def test_onnx_vectors_match_torch(
    torch_embedder: Embedder, embed_config: EmbedConfig, onnx_cache: Path, backend: str, floor: float
) -> None:
    reference = np.array(torch_embedder.encode(TEXTS))
    onnx = _onnx(embed_config, onnx_cache, backend)
    vectors = np.array(onnx.encode(TEXTS))  # batch 2 over 5 length-sorted texts: order must come back intact
    assert vectors.shape == reference.shape
    assert onnx.dim == torch_embedder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= floor, cosines
    assert onnx.embedded_total == len(TEXTS)
    # Alone vs in a batch: int8 activation scales are computed per batch, so only close, not equal.
    assert float(np.dot(onnx.encode_query(TEXTS[1]), vectors[1])) >= floor


@pytest.mark.slow
def test_export_is_cached(embed_config: EmbedConfig, onnx_cache: Path) -> None:
    first = export_onnx(embed_config.model_path, onnx_cache, "onnx-int8")
    stamp = first.stat().st_mtime_ns
    assert export_onnx(embed_config.model_path, onnx_cache, "onnx-int8") == first
    assert first.stat().st_mtime_ns == stamp
    assert not list(first.parent.glob("*.tmp"))


def test_backend_changes_the_recorded_model_id(tmp_path: Path) -> None:
    torch_id = Settings(data_dir=tmp_path, embed_backend="torch").embedding_model_id
    int8_id = Settings(data_dir=tmp_path, embed_backend="onnx-int8").embedding_model_id
    assert torch_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert int8_id == torch_id + "+onnx-int8"  # vectors cached for torch are never reused for int8
    assert Settings(data_dir=tmp_path).embedding_model_id == int8_id  # a new lake starts on int8
