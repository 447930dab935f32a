"""Pinecone-specific behaviour, against the local HTTP double of its data plane (Pinecone cannot run here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.errors import VectorStoreError
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.settings import Settings
from pipelines.vectorstore.pinecone import PineconeVectorStore
from tests.doubles.pinecone_double import MAX_REQUEST_BYTES, PineconeDouble
from tests.steps import process_one, register_one


@pytest.fixture()
def double() -> Iterator[PineconeDouble]:
    d = PineconeDouble().start()
    yield d
    d.stop()


def _records(n: int, dim: int = 384) -> list[VectorRecord]:
    return [
        VectorRecord(
            id=f"c{i:05d}",
            tenant="acme",
            doc_id=f"doc{i % 7}",
            doc_version=1,
            vector=[((i * 31 + j) % 97) / 97.0 for j in range(dim)],
            metadata={"team": "ops", "note": "x" * 200},
        )
        for i in range(n)
    ]


def test_upserts_are_split_under_pinecone_request_limits(double: PineconeDouble) -> None:
    store = PineconeVectorStore(api_key="k", host=double.url, max_retries=0)
    store.upsert(_records(2500))
    upserts = [size for path, size in double.requests if path == "/vectors/upsert"]
    assert len(upserts) >= 3  # 2500 vectors of 384 floats cannot fit in one 2 MB, 1000-vector request
    assert max(upserts) <= MAX_REQUEST_BYTES
    assert store.count("acme") == 2500
    assert sorted(store.document_ids("acme", "doc3")) == sorted(f"c{i:05d}" for i in range(2500) if i % 7 == 3)
    store.delete_document("acme", "doc3")  # more ids than one list page: pagination is followed
    assert store.count("acme") == 2500 - len([i for i in range(2500) if i % 7 == 3])


def test_rate_limits_are_retried(double: PineconeDouble) -> None:
    store = PineconeVectorStore(api_key="k", host=double.url, max_retries=4)
    double.fail_next = 2
    store.upsert(_records(3))
    assert store.count("acme") == 3


def test_persistent_errors_surface_as_vector_store_errors(double: PineconeDouble) -> None:
    store = PineconeVectorStore(api_key="k", host=double.url, max_retries=1)
    double.fail_next = 1000  # the SDK retries a few times itself, then we do
    with pytest.raises(VectorStoreError) as info:
        store.upsert(_records(1))
    assert info.value.retryable  # a 429 that outlasted our retries is still worth a task retry
    double.fail_next = 0
    double.require_key = "the-real-key"
    bad = PineconeVectorStore(api_key="a-wrong-key", host=double.url, max_retries=3)
    with pytest.raises(VectorStoreError) as info:
        bad.count()
    assert not info.value.retryable  # 401: retrying cannot help


def test_search_hydrates_chunk_text_from_gold(double: PineconeDouble, tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", vector_store="pinecone", pinecone_api_key=SecretStr("k"), pinecone_host=double.url
    )
    rt = Runtime.from_settings(settings)
    reg = register_one(rt, b"The backup job copies the ledger to cold storage every night.", filename="ops.txt")
    assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    (hit,) = search(rt, SearchQuery(query="when is the ledger backed up?", top_k=3))
    assert hit.doc_id == reg.doc_id and "cold storage every night" in hit.text
    stored = next(iter(double.namespaces["default"].values()))
    assert "text" not in stored["metadata"]  # chunk text stays in gold


def test_a_reindex_builds_a_suffixed_namespace_and_drops_the_old_one(
    double: PineconeDouble, tmp_path: Path, embedder: Embedder
) -> None:
    from pipelines.ops.reconcile import ReconcileParams, reconcile
    from pipelines.ops.reindex import ReindexParams, reindex

    settings = Settings(
        data_dir=tmp_path / "data", vector_store="pinecone", pinecone_api_key=SecretStr("k"), pinecone_host=double.url
    )
    rt = Runtime.from_settings(settings)
    text = b"The backup job copies the ledger to cold storage every night.\n\nRestores are tested monthly."
    reg = register_one(rt, text, filename="ops.txt")
    assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    base_store = rt.vectors
    report = reindex(rt, ReindexParams(chunk_max_tokens=16, chunk_overlap_tokens=0))
    assert report.switched
    suffixed = f"default__{report.index_id}"
    assert set(double.namespaces) >= {"default", suffixed}
    # Each index's store sees only its own namespaces, though they share one Pinecone index.
    assert base_store.count() == len(double.namespaces["default"])
    assert rt.vectors.count() == len(double.namespaces[suffixed]) > base_store.count()
    assert [s.tenant for s in rt.vectors.iter_ids()][:1] == ["default"]
    assert reconcile(rt, ReconcileParams(repair=False)).clean
    (hit, *_) = search(rt, SearchQuery(query="when is the ledger backed up?", top_k=3))
    assert hit.doc_id == reg.doc_id and "ledger" in hit.text
    reindex(rt, ReindexParams(chunk_max_tokens=16, chunk_overlap_tokens=0, drop_old=True))
    assert base_store.count() == 0 and rt.vectors.count() > 0
