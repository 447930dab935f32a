"""The cross-encoder stage, with a tiny model built here (no package ships real reranker weights):
a 1-layer BertForSequenceClassification with random weights and the packaged MiniLM's tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.errors import RerankerUnavailable
from pipelines.runtime import Runtime
from pipelines.serve.rerank import load_reranker, rerank_hits
from pipelines.serve.search import search
from pipelines.settings import Settings
from pipelines.vectorstore.base import VectorHit
from tests.steps import process_one, register_one

TEXTS = [
    "The nightly job copies the ledger to cold storage.",
    "Pagers must be acknowledged within five minutes.",
    "Invoices are kept for seven years.",
    "The VPN certificate expires every ninety days.",
    "Restores take about forty minutes.",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    torch.manual_seed(19)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    config.num_labels = 1  # one relevance score per pair, as a cross-encoder has
    BertForSequenceClassification(config).save_pretrained(folder)
    packaged = Settings().resolved_model_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(packaged / name, folder / name)
    return folder


def _hits(texts: list[str]) -> list[VectorHit]:
    return [
        VectorHit(
            record=VectorRecord(id=f"c{i}", tenant="t", doc_id=f"d{i}", doc_version=1, vector=[], text=t), score=1.0
        )
        for i, t in enumerate(texts)
    ]


def test_the_reranker_reorders_by_the_cross_encoder_score(tiny_model: Path) -> None:
    reranker = load_reranker(tiny_model)
    scores = reranker.score("when is the ledger backed up?", TEXTS)
    assert len(set(scores)) == len(TEXTS)  # the tiny model tells them apart, so the order below is defined
    worst_first = [t for _, t in sorted(zip(scores, TEXTS, strict=True))]
    reranked = rerank_hits("when is the ledger backed up?", _hits(worst_first), reranker, depth=10)
    assert [h.record.text for h in reranked] == worst_first[::-1]
    assert [h.score for h in reranked] == pytest.approx(sorted(scores, reverse=True))
    # Only the first `depth` hits are rescored; the rest follow in their earlier order.
    partial = rerank_hits("when is the ledger backed up?", _hits(worst_first), reranker, depth=2)
    assert [h.record.text for h in partial] == [worst_first[1], worst_first[0], *worst_first[2:]]


def test_a_missing_or_broken_model_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RerankerUnavailable, match="does not exist"):
        load_reranker(tmp_path / "nowhere")
    with pytest.raises(RerankerUnavailable, match=r"no config\.json"):
        load_reranker(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')  # no weights, no tokenizer
    with pytest.raises(RerankerUnavailable, match="cannot be loaded"):
        load_reranker(tmp_path)


def test_search_reranks_with_the_configured_model(tmp_path: Path, tiny_model: Path, embedder: Embedder) -> None:
    rt = Runtime.from_settings(Settings(data_dir=tmp_path / "data", rerank_model=tiny_model))
    for i, text in enumerate(TEXTS):
        reg = register_one(rt, text.encode(), filename=f"{i}.txt", doc_id=f"d{i}")
        assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    ask = "when is the ledger backed up?"
    hits = search(rt, SearchQuery(query=ask, top_k=5, mode="dense", rerank=True))
    expected = load_reranker(tiny_model).score(ask, [h.text for h in hits])
    assert [h.score for h in hits] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    assert sorted(h.text for h in hits) == sorted(TEXTS)


def test_rerank_without_a_model_is_a_422_and_a_bad_model_stops_the_start(
    inline_api: TestClient, tmp_path: Path
) -> None:
    r = inline_api.post("/v1/search", json={"query": "ledger", "rerank": True})
    assert r.status_code == 422 and "DOCLAKE_RERANK_MODEL" in r.json()["detail"]
    body = inline_api.post("/v1/search", json={"query": "ledger"}).json()
    assert body["mode"] == "hybrid"  # the default mode on LanceDB, said in the answer
    broken = Settings(data_dir=tmp_path / "other", rerank_model=tmp_path / "missing")
    with pytest.raises(RerankerUnavailable, match="does not exist"), TestClient(create_app(broken)):
        pass
