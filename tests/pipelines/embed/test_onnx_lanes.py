"""Bulk encodes run their batches side by side, one core each, and give exactly the serial vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.embed.model import EmbedConfig
from pipelines.embed.onnx import OnnxModel

CORPUS_TEXT = Path(__file__).resolve().parents[3] / "README.md"


def _texts() -> list[str]:
    words = CORPUS_TEXT.read_text().split()
    # Pieces of different lengths, so batches differ in width and finish out of order.
    return [" ".join(words[i : i + 20 + (i % 7) * 25]) for i in range(0, 3000, 120)]


@pytest.fixture(scope="module", params=["onnx-int8", "onnx"])
def models(request: pytest.FixtureRequest, embed_config: EmbedConfig) -> tuple[OnnxModel, OnnxModel]:
    cache = embed_config.cache_dir
    if cache is None:
        pytest.skip("the default backend is torch here")
    one = OnnxModel(embed_config.model_path, cache, request.param, threads=1)
    two = OnnxModel(embed_config.model_path, cache, request.param, threads=2)
    return one, two


def test_lanes_give_the_serial_vectors_in_order(models: tuple[OnnxModel, OnnxModel]) -> None:
    serial, lanes = models
    texts = _texts()
    expected = serial.encode(texts, batch_size=8)
    got = lanes.encode(texts, batch_size=8)
    assert lanes._pool is not None  # many batches: they ran on the lanes
    assert serial._pool is None  # one thread: no pool, no second session
    np.testing.assert_array_equal(got, expected)
    # Each row is its own text's vector, not a neighbour's (order restored after the parallel runs).
    np.testing.assert_array_equal(lanes.encode([texts[3]], batch_size=8)[0], expected[3])


def test_one_batch_uses_the_multithreaded_session(embed_config: EmbedConfig) -> None:
    assert embed_config.cache_dir is not None
    fresh = OnnxModel(embed_config.model_path, embed_config.cache_dir, "onnx-int8", threads=2)
    fresh.encode(["a query is one text"], batch_size=8)
    assert fresh._pool is None and fresh._bulk is None  # a query keeps its latency: no second session


def test_a_forked_process_makes_its_own_lanes(models: tuple[OnnxModel, OnnxModel]) -> None:
    serial, lanes = models
    texts = _texts()[:6]
    lanes.encode(texts, batch_size=1)
    inherited = lanes._pool
    lanes._pool_pid = -1  # as in a child forked after the pool started: its threads did not come along
    got = lanes.encode(texts, batch_size=1)
    assert lanes._pool is not inherited
    np.testing.assert_array_equal(got, serial.encode(texts, batch_size=1))
