"""Search as built for issue 19: the default mode per store, contextual embeddings with raw text returned,
collapse and MMR through search, and the embedding cache across raw and contextual indexes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.contracts.documents import ChunkerConfig
from pipelines.contracts.ids import sha256_hex
from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.lakehouse.indexes import index_id_for
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.runtime import Runtime
from pipelines.serve.search import resolve_mode, search
from pipelines.settings import Settings
from tests.doubles.pinecone_double import PineconeDouble
from tests.steps import process_one, register_one

BACKUPS = "The nightly job copies every table to cold storage at two in the morning and keeps thirty snapshots."
RESTORE = "Restoring takes about forty minutes; the on-call engineer runs the restore script from the runbook."
DOC = f"# Ledger operations\n\n## Backups\n\n{BACKUPS}\n\n{RESTORE}\n".encode()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _small_chunks(tmp_path: Path, **extra: object) -> Settings:
    # 32-token chunks: each paragraph is its own chunk, so the RESTORE chunk holds no heading of its own.
    return Settings(data_dir=tmp_path / "data", chunk_max_tokens=32, chunk_overlap_tokens=4, **extra)  # type: ignore[arg-type]


@pytest.fixture()
def pinecone() -> Iterator[PineconeDouble]:
    d = PineconeDouble().start()
    yield d
    d.stop()


def test_default_mode_is_hybrid_on_lancedb_and_dense_on_pinecone(
    runtime: Runtime, tmp_path: Path, pinecone: PineconeDouble, embedder: Embedder
) -> None:
    assert resolve_mode(runtime, SearchQuery(query="q")) == "hybrid"
    assert resolve_mode(runtime, SearchQuery(query="q", mode="dense")) == "dense"
    assert resolve_mode(runtime, SearchQuery(query="q", as_of=1)) == "dense"  # exact snapshot search
    settings = Settings(
        data_dir=tmp_path / "pc", vector_store="pinecone", pinecone_api_key=SecretStr("k"), pinecone_host=pinecone.url
    )
    rt = Runtime.from_settings(settings)
    assert resolve_mode(rt, SearchQuery(query="q")) == "dense"
    reg = register_one(rt, BACKUPS.encode(), filename="ops.txt")
    assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    (hit,) = search(rt, SearchQuery(query="when are tables copied to cold storage?", top_k=3))  # no 422
    assert hit.doc_id == reg.doc_id


def test_chunks_are_embedded_with_title_and_headings_and_returned_raw(tmp_path: Path, embedder: Embedder) -> None:
    rt = Runtime.from_settings(_small_chunks(tmp_path, chunk_embed_context=True))
    assert rt.index().chunker.embed_context
    reg = register_one(rt, DOC, filename="ops.md", metadata={"title": "Finance runbook"})
    assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    rows = {r["text"]: r for r in rt.lake.read(rt.index().gold).to_pylist()}
    restore = rows[RESTORE]  # gold keeps the chunk's own text
    assert restore["heading_path"] == ["Ledger operations", "Backups"]
    embedded = f"Finance runbook > Ledger operations > Backups\n\n{RESTORE}"
    assert restore["text_sha256"] == sha256_hex(embedded)  # the cache key is what was embedded
    with_context, alone = embedder.encode([embedded, RESTORE])
    assert _cos(restore["embedding"], with_context) > 0.999
    assert _cos(restore["embedding"], alone) < 0.99
    for mode in ("dense", "keyword", "hybrid"):
        hits = search(rt, SearchQuery(query="how long does a restore take", top_k=5, mode=mode))  # type: ignore[arg-type]
        assert RESTORE in [h.text for h in hits]
        assert all(not h.text.startswith("Finance runbook >") for h in hits)


def test_an_old_index_record_keeps_raw_embeddings_and_its_ids() -> None:
    recorded = '{"max_tokens":256,"overlap_tokens":32,"break_on_headings":true}'  # before embed_context
    old = ChunkerConfig.model_validate_json(recorded)
    assert old.embed_context is False
    assert old.config_id == "c" + sha256_hex(recorded)[:12]  # gold rows' chunker_id stays valid
    assert index_id_for("m", "torch", old) == "i" + sha256_hex(f"m\x1ftorch\x1f{recorded}")[:10]
    new = old.model_copy(update={"embed_context": True})
    assert new.config_id != old.config_id and index_id_for("m", "torch", new) != index_id_for("m", "torch", old)


def test_raw_and_contextual_vectors_never_mix_across_a_reindex(tmp_path: Path, embedder: Embedder) -> None:
    rt = Runtime.from_settings(_small_chunks(tmp_path))  # the default: raw text
    reg = register_one(rt, DOC, filename="ops.md")
    assert process_one(rt, "default", reg.doc_id, reg.version).state == "done"
    raw = {r["text"]: r for r in rt.lake.read(rt.index().gold).to_pylist()}
    assert raw[RESTORE]["text_sha256"] == sha256_hex(RESTORE)  # the lake's index embeds raw text

    report = reindex(rt, ReindexParams(embed_context=True))
    assert report.mode == "blue_green"
    index = rt.index(fresh=True)
    assert index.index_id == report.index_id and index.chunker.embed_context
    ctx = {r["text"]: r for r in rt.lake.read(index.gold).to_pylist()}
    # The reindex may reuse the raw gold's vectors only where the embedded string is the same.
    context_vector = embedder.encode([f"Ledger operations > Backups\n\n{RESTORE}"])[0]
    assert _cos(ctx[RESTORE]["embedding"], context_vector) > 0.999
    assert ctx[RESTORE]["embedding"] != raw[RESTORE]["embedding"]
    first = next(t for t in ctx if t.startswith("# Ledger") or t.startswith("Ledger"))
    assert ctx[first]["embedding"] == raw[first]["embedding"]  # its headings are its own text: reused


def test_collapse_and_mmr_through_search(runtime: Runtime, embedder: Embedder) -> None:
    text = "Quarterly invoices are archived in the finance share and kept for seven years by policy."
    ids = []
    for name, body in (("a.txt", text), ("b.txt", text + "\n"), ("c.txt", "Invoices over 10k need two approvals.")):
        reg = register_one(runtime, body.encode(), filename=name, doc_id=name.split(".")[0])
        assert process_one(runtime, "default", reg.doc_id, reg.version).state == "done"
        ids.append(reg.doc_id)
    ask = "how long are invoices kept"
    every = search(runtime, SearchQuery(query=ask, top_k=3, mode="dense", collapse_duplicates=False))
    assert sorted(h.doc_id for h in every) == ["a", "b", "c"]
    collapsed = search(runtime, SearchQuery(query=ask, top_k=3, mode="dense"))
    assert len(collapsed) == 2 and {h.doc_id for h in collapsed} >= {"c"}  # one of the two copies kept
    diverse = search(runtime, SearchQuery(query=ask, top_k=2, mode="dense", collapse_duplicates=False, mmr=0.1))
    assert {h.doc_id for h in diverse} & {"c"}  # MMR reads gold's vectors and skips the second copy
