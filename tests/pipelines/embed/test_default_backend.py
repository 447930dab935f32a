"""New lakes start on onnx-int8, existing lakes keep their backend, and a model that cannot be prepared
stops the service at start instead of failing documents."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.main import create_app
from pipelines.embed.model import EmbedConfig, Embedder
from pipelines.embed.onnx import OnnxModel
from pipelines.embed.prepare import ModelPrepareError, prepare_model
from pipelines.runtime import Runtime
from pipelines.settings import Settings


def test_a_new_lake_starts_on_onnx_int8_and_searches_with_it(runtime: Runtime) -> None:
    index = runtime.index(fresh=True)
    assert index.embed_backend == "onnx-int8" and index.model_id.endswith("+onnx-int8")
    assert runtime.embedder().config.backend == runtime.query_embedder().config.backend == "onnx-int8"


def test_a_torch_lake_keeps_torch_until_reindexed(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    Runtime.from_settings(settings.model_copy(update={"embed_backend": "torch"}))  # a lake made before int8
    with caplog.at_level(logging.WARNING, logger="doclake"):
        unset = Runtime.from_settings(settings)  # the default no longer names a backend: the lake decides
    assert unset.index().embed_backend == "torch" and unset.embed_config.backend == "torch"
    assert unset.embed_config.model_id == settings.model_id  # torch ids carry no suffix: its cache stays valid
    assert not [r for r in caplog.records if "doclake reindex" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="doclake"):
        explicit = Runtime.from_settings(settings.model_copy(update={"embed_backend": "onnx-int8"}))
    assert explicit.index().embed_backend == "torch"  # never mixed vectors in one index
    assert any("doclake reindex" in r.getMessage() for r in caplog.records)


def _broken_model(tmp_path: Path) -> Path:
    folder = tmp_path / "no-weights"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_model_that_cannot_be_exported_is_a_start_error_that_names_the_fix(tmp_path: Path) -> None:
    config = EmbedConfig(
        model_path=_broken_model(tmp_path), model_id="m", backend="onnx-int8", cache_dir=tmp_path / "cache"
    )
    with pytest.raises(ModelPrepareError) as failure:
        prepare_model(config)
    assert "onnx-int8" in str(failure.value) and "DOCLAKE_EMBED_BACKEND=torch" in str(failure.value)

    env = {
        "DOCLAKE_DATA_DIR": str(tmp_path / "data"),
        "DOCLAKE_MODEL_PATH": str(config.model_path),
        "DOCLAKE_EMBED_CACHE_DIR": str(tmp_path / "cache"),
    }
    started = CliRunner().invoke(cli, ["up"], env=env)  # had it started anything, it would serve until stopped
    assert started.exit_code == 2 and "cannot be prepared" in started.output
    refused = CliRunner().invoke(cli, ["prepare-model", "--backend", "int4"], env=env)
    assert refused.exit_code == 2 and "unknown embedding backend" in refused.output


def test_prepare_model_leaves_an_exported_checked_model(embed_config: EmbedConfig, embedder: Embedder) -> None:
    exported = prepare_model(embed_config, load=True)  # the session's cache: exported already, so instant
    assert exported is not None and exported.name == "model_int8.onnx" and exported.stat().st_size > 1_000_000
    assert prepare_model(embed_config.model_copy(update={"backend": "torch", "cache_dir": None})) is None


def test_healthz_says_why_the_query_model_failed(settings: Settings, tmp_path: Path) -> None:
    broken = settings.model_copy(update={"model_path": _broken_model(tmp_path), "embed_cache_dir": tmp_path / "c"})
    with TestClient(create_app(broken, enqueue=lambda *_: None)) as client:
        deadline = time.monotonic() + 60
        while (body := client.get("/healthz").json())["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.2)
        response = client.get("/healthz")
    assert response.status_code == 503 and body["status"] == "failed" and not body["model_loaded"]
    assert "cannot be" in body["error"] or "failed" in body["error"]


def test_int8_gives_a_text_the_same_vector_whatever_its_batch(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    model: OnnxModel = embedder.model
    # Digits cost a token each, words about one per word: character length misorders these.
    texts = ["1 2 3 4 5 6 7 8 9 " * 6, "extraordinarily " * 8, "a " * 40, "international " * 2, "x", "7 " * 30]
    widths: list[list[int]] = []
    original = OnnxModel._encode_batch

    def spy(self: OnnxModel, session: object, ids: list[list[int]], types: list[list[int]]) -> object:
        widths.append([len(row) for row in ids])
        return original(self, session, ids, types)

    monkeypatch.setattr(OnnxModel, "_encode_batch", spy)
    together = model.encode(texts, batch_size=32)
    counts = sorted((len(ids) for ids in model.tokenizer(texts)["input_ids"]), reverse=True)
    # int8: one text per call (the calls run side by side on the cores, so they may finish in any order)
    assert sorted(widths, reverse=True) == [[n] for n in counts]
    # Dynamic int8 scales activations per call: batched, these moved to cosine ~0.97 of themselves alone.
    for i, text in enumerate(texts):
        np.testing.assert_allclose(together[i], model.encode([text], batch_size=32)[0], atol=1e-6)


def test_batches_are_bounded_by_count_and_padded_tokens() -> None:
    from pipelines.embed.onnx import _batches

    lengths = [256, 250, 240, 30, 30, 30, 30, 5]
    order = list(range(len(lengths)))  # already longest first
    # 2 x 256 tokens; 240 + a 30 padded to 240 (a third would make 720); the short rest fits one batch.
    assert _batches(order, lengths, 32, 512) == [[0, 1], [2, 3], [4, 5, 6, 7]]
    assert _batches(order, lengths, 2, 512) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert _batches([0], [900], 32, 512) == [[0]]  # a text longer than the budget still gets its batch
