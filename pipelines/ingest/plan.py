"""Chunk plans: the gold rows a document version should have, embedding only what gold lacks (writes nothing)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from pipelines.contracts.documents import (
    DocFormat,
    Element,
    ElementKind,
    ExtractedDocument,
)
from pipelines.contracts.ids import chunk_id_for, sha256_hex
from pipelines.contracts.rows import GoldRow
from pipelines.embed.chunker import chunk_tokens, document_title, embedding_text
from pipelines.lakehouse.chunks import cached_embeddings, docs_chunks
from pipelines.lakehouse.indexes import IndexSpec
from pipelines.lakehouse.schemas import TableSpec
from pipelines.runtime import Runtime

__all__ = ["ChunkPlan", "PlanRequest", "plan_chunks", "plan_rows", "stored_document", "text_document"]


class ChunkPlan(BaseModel):
    """The gold rows one document version should have, and how many vectors were computed for them."""

    rows: list[GoldRow]
    embedded: int
    reused: int
    removed: int = 0


class PlanRequest(BaseModel):
    """One document version to chunk and embed."""

    document: ExtractedDocument
    doc_id: str
    version: int
    filename: str | None = None
    metadata_json: str = "{}"
    acl: list[str] | None = None


def stored_document(row: dict[str, Any]) -> ExtractedDocument:
    """The extracted document a silver row holds (its elements, format and mime)."""
    elements = [Element.model_validate(e) for e in json.loads(row["elements_json"] or "[]")]
    return ExtractedDocument(format=DocFormat(row["format"] or "txt"), mime=row["mime"] or "", elements=elements)


def text_document(text: str) -> ExtractedDocument:
    """A plain-text document (a change event's text): one element per blank-line-separated paragraph."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return ExtractedDocument(
        format=DocFormat.text, mime="text/plain", elements=[Element(text=p, kind=ElementKind.text) for p in paragraphs]
    )


def plan_chunks(
    rt: Runtime,
    tenant: str,
    requests: list[PlanRequest],
    *,
    index: IndexSpec | None = None,
    cache_from: tuple[TableSpec, ...] = (),
) -> dict[str, ChunkPlan]:
    """Chunk documents of a tenant and embed only chunks gold does not already hold (writes nothing).

    Returns each document's plan by doc_id. Vectors are reused when the same model already embedded
    the same text: first the document's own chunks (an unchanged chunk keeps its id and vector),
    then any chunk in the index's gold or in ``cache_from`` (a reindex passes the gold it replaces).
    The Celery step, the stream and reindex all build their gold rows here, for ``index`` (default:
    the active one). One gold read, one cache lookup and one encode call for all documents, so small
    documents fill the model's batches.
    """
    index = index or rt.index()
    config = index.chunker
    tokenizer = rt.tokenizer(index)
    model_id = index.model_id
    tokenized = {r.doc_id: chunk_tokens(r.document, tokenizer=tokenizer, config=config) for r in requests}
    chunked = {d: [c for c, _ in pairs] for d, pairs in tokenized.items()}
    # What each chunk's vector is computed from, and its hash: the embedding-cache key stored as gold's
    # text_sha256. With context the same text under another title or heading is another key, so vectors
    # of raw and contextual text never stand in for each other, in one index or across a reindex.
    embedded_text: dict[str, list[str]] = {
        r.doc_id: [
            embedding_text(c, title=_title(r.metadata_json) or document_title(r.document))
            if config.embed_context
            else c.text
            for c in chunked[r.doc_id]
        ]
        for r in requests
    }
    keys = {d: [sha256_hex(t) for t in texts] for d, texts in embedded_text.items()}

    existing = docs_chunks(
        rt.lake,
        tenant,
        list(chunked),
        columns=["doc_id", "chunk_id", "text_sha256", "embedding", "model_id"],
        gold=index.gold,
    )
    own: dict[str, list[float]] = {}
    old_ids: dict[str, set[str]] = {}
    for doc, cid, sha, emb, mid in zip(
        existing.column("doc_id").to_pylist(),
        existing.column("chunk_id").to_pylist(),
        existing.column("text_sha256").to_pylist(),
        existing.column("embedding").to_pylist(),
        existing.column("model_id").to_pylist(),
        strict=True,
    ):
        old_ids.setdefault(doc, set()).add(cid)
        if mid == model_id and emb:
            own.setdefault(sha, emb)
    missing = [k for ks in keys.values() for k in ks if k not in own]
    golds = (index.gold, *cache_from)
    cache = {**cached_embeddings(rt.lake, model_id, missing, tenant=tenant, golds=golds), **own} if missing else own
    to_embed = sorted(
        {k: t for d in embedded_text for k, t in zip(keys[d], embedded_text[d], strict=True) if k not in cache}.items()
    )
    # The chunker's token ids are those of the chunk's own text: reused unless context is embedded with it.
    token_ids = (
        {}
        if config.embed_context
        else {k: ids for d in tokenized for k, (_, ids) in zip(keys[d], tokenized[d], strict=True)}
    )
    vectors = (
        rt.embedder(index).encode([text for _, text in to_embed], token_ids=[token_ids.get(k) for k, _ in to_embed])
        if to_embed
        else []
    )
    fresh = {sha: vec for (sha, _), vec in zip(to_embed, vectors, strict=True)}

    plans: dict[str, ChunkPlan] = {}
    for r in requests:
        chunks = chunked[r.doc_id]
        rows = [
            GoldRow(
                tenant=tenant,
                chunk_id=chunk_id_for(tenant, r.doc_id, key, c.occurrence),
                doc_id=r.doc_id,
                doc_version=r.version,
                ordinal=c.ordinal,
                text=c.text,
                text_sha256=key,
                page_start=c.page_start,
                page_end=c.page_end,
                char_start=c.char_start,
                char_end=c.char_end,
                heading_path=c.heading_path,
                embedding=fresh.get(key) or cache[key],
                model_id=model_id,
                chunker_id=config.config_id,
                filename=r.filename,
                metadata_json=r.metadata_json,
                acl=r.acl,
            )
            for c, key in zip(chunks, keys[r.doc_id], strict=True)
        ]
        embedded = {k for k in keys[r.doc_id] if k in fresh}
        plans[r.doc_id] = ChunkPlan(
            rows=rows,
            embedded=len(embedded),
            reused=len(rows) - sum(1 for k in keys[r.doc_id] if k in fresh),
            removed=len(old_ids.get(r.doc_id, set()) - {row.chunk_id for row in rows}),
        )
    return plans


def _title(metadata_json: str) -> str | None:
    """The document title the uploader gave as metadata ``title``, if any (a heading path carries the rest)."""
    try:
        title = json.loads(metadata_json or "{}").get("title")
    except (ValueError, AttributeError):
        return None
    return title.strip() or None if isinstance(title, str) else None


def _request(row: dict[str, Any]) -> PlanRequest:
    return PlanRequest(
        document=stored_document(row),
        doc_id=row["doc_id"],
        version=row["version"],
        filename=row["filename"],
        metadata_json=row["metadata_json"] or "{}",
        acl=row.get("acl"),
    )


def plan_rows(
    rt: Runtime,
    tenant: str,
    rows: list[dict[str, Any]],
    index: IndexSpec,
    *,
    cache_from: tuple[TableSpec, ...] = (),
) -> dict[str, ChunkPlan]:
    """The chunk plans of silver rows (with text) of one tenant for ``index``, by doc_id."""
    return plan_chunks(rt, tenant, [_request(r) for r in rows], index=index, cache_from=cache_from)
