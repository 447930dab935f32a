"""The ingestion steps: register → extract → chunk_embed → mirror, plus failure recording.

Each step takes primitive ids, re-reads what it needs from the lake, and is idempotent: a step for
a version that is no longer current raises StaleVersion, a step whose work is already done returns
without writing, so redelivered or duplicated tasks are harmless. The Celery tasks and the Spark
stream call these functions; nothing here knows about either.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelines import metrics
from pipelines.chunk import chunk_document
from pipelines.contracts import (
    DEFAULT_TENANT,
    DocFormat,
    DocumentStatus,
    Element,
    ElementKind,
    ExtractedDocument,
    MetadataValue,
    RegisterResult,
    VectorRecord,
    chunk_id_for,
    sha256_hex,
)
from pipelines.errors import DocLakeError, DocumentNotFound, IndexSwitched, InvalidInput, StaleVersion
from pipelines.indexes import IndexSpec
from pipelines.lakehouse.chunks import cached_embeddings, docs_chunks, replace_docs_chunks
from pipelines.lakehouse.documents import (
    get_document,
    get_documents,
    insert_versions,
    record_raw_objects,
    update_document,
    update_documents,
)
from pipelines.lakehouse.schemas import TableSpec
from pipelines.lakehouse.updates import newest_event_versions
from pipelines.objectstore import raw_key
from pipelines.runtime import Runtime

__all__ = [
    "ChunkEmbedResult",
    "ChunkPlan",
    "PlanRequest",
    "RegisterItem",
    "chunk_embed_many",
    "chunk_embed_step",
    "extract_many",
    "extract_step",
    "mark_failed",
    "mirror_documents",
    "mirror_many",
    "mirror_step",
    "plan_chunks",
    "plan_chunks_many",
    "prepare_item",
    "process_inline",
    "process_inline_many",
    "register_object",
    "register_objects",
    "run_many",
    "run_step",
    "stored_document",
    "text_document",
    "validate_doc_id",
    "validate_metadata",
]

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_METADATA_BYTES = 16_384


def validate_doc_id(doc_id: str, *, what: str = "doc_id") -> str:
    if not _ID.match(doc_id):
        raise InvalidInput(
            f"{what} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
            doc_id=doc_id,
        )
    return doc_id


def validate_metadata(metadata: Any, *, doc_id: str | None = None) -> dict[str, MetadataValue]:
    """Metadata is a flat JSON object of strings, numbers and booleans (filters match it exactly)."""
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", doc_id=doc_id)
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > 128 or "=" in key:
            raise InvalidInput(f"metadata key {key!r} must be a non-empty string without '='", doc_id=doc_id)
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"metadata value of {key!r} must be a string, number or boolean", doc_id=doc_id)
    if len(json.dumps(metadata)) > _MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is larger than {_MAX_METADATA_BYTES} bytes", doc_id=doc_id)
    return dict(metadata)


def _current(rt: Runtime, tenant: str, doc_id: str, version: int, *, with_text: bool = False) -> dict[str, Any]:
    row = get_document(rt.lake, tenant, doc_id, with_text=with_text)
    error = _version_error(row, doc_id, version)
    if error is not None:
        raise error
    assert row is not None
    return row


def _version_error(row: dict[str, Any] | None, doc_id: str, version: int) -> DocLakeError | None:
    """Why a step for ``version`` may not act on the document's silver ``row`` (None when it may)."""
    if row is None:
        return DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
    if row["version"] != version:
        return StaleVersion(f"version {version} is not current (current is {row['version']})", doc_id=doc_id)
    return None


def _triage(
    rows: dict[str, dict[str, Any]], versions: dict[str, int], acts_on: tuple[DocumentStatus, ...], *, idle: Any
) -> tuple[Results, dict[str, dict[str, Any]]]:
    """Split a step's documents into the silver rows it acts on (current version, status in
    ``acts_on``) and the results of the others: their version error, or ``idle`` (nothing to do)."""
    results: Results = {}
    ready: dict[str, dict[str, Any]] = {}
    for doc_id, version in versions.items():
        row = rows.get(doc_id)
        error = _version_error(row, doc_id, version)
        if error is not None:
            results[doc_id] = error
        elif row is not None and row["status"] in acts_on:
            ready[doc_id] = row
        else:
            results[doc_id] = idle
    return results, ready


@contextmanager
def _doc_locks(rt: Runtime, tenant: str, doc_ids: Iterable[str]) -> Iterator[None]:
    """Every document's lock, taken in sorted order so that two batches cannot deadlock."""
    with ExitStack() as stack:
        for doc_id in sorted(set(doc_ids)):
            stack.enter_context(rt.doc_lock(tenant, doc_id))
        yield


# What a many-document step returns per document: its result, or the error that document hit.
Results = dict[str, Any]


def _single(results: Results, doc_id: str) -> Any:
    """The one document's result of a many-document step, raising the error it hit."""
    result = results[doc_id]
    if isinstance(result, BaseException):
        raise result
    return result


class RegisterItem(BaseModel):
    """One object to register: its bytes and what the caller said about it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: bytes
    filename: str | None = None
    doc_id: str | None = None
    # Checked by ``prepare_item`` (validate_metadata), which raises the documented InvalidInput.
    metadata: Any = None
    stored_uri: str | None = None


def prepare_item(item: RegisterItem) -> RegisterItem:
    """Validate an item and give it its doc_id (derived from the content hash when not given).

    Raises:
        InvalidInput: bad doc_id or metadata.
    """
    doc_id = validate_doc_id(item.doc_id) if item.doc_id else f"d{sha256_hex(item.data)[:24]}"
    metadata = validate_metadata(item.metadata, doc_id=doc_id) if item.metadata is not None else None
    return item.model_copy(update={"doc_id": doc_id, "metadata": metadata})


def register_object(
    rt: Runtime,
    data: bytes,
    *,
    filename: str | None,
    tenant: str = DEFAULT_TENANT,
    doc_id: str | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    source: str = "api",
    stored_uri: str | None = None,
) -> RegisterResult:
    """Store the raw bytes, record them in bronze, and queue a new version in silver.

    Without a doc_id the id is derived from the content hash, so uploading the same file twice is
    one document. Identical bytes (and metadata) for the current version are a no-op.
    ``stored_uri`` names bytes already in the object store (S3 events): they are not stored again.

    Raises:
        InvalidInput: bad doc_id or metadata.
    """
    item = RegisterItem(data=data, filename=filename, doc_id=doc_id, metadata=metadata, stored_uri=stored_uri)
    return register_objects(rt, [item], tenant=tenant, source=source)[0]


def register_objects(
    rt: Runtime, items: list[RegisterItem], *, tenant: str = DEFAULT_TENANT, source: str = "api"
) -> list[RegisterResult]:
    """``register_object`` for many objects of a tenant: one read and two commits per 256 of them.

    Items are taken in order: an item identical to an earlier one of the same document is a
    duplicate of it, a different one becomes the next version.

    Raises:
        InvalidInput: a bad tenant, doc_id or metadata (before anything is written; validate each
            item with ``prepare_item`` first to reject only the bad ones).
    """
    validate_doc_id(tenant, what="tenant")
    items = [prepare_item(i) for i in items]
    results: list[RegisterResult] = []
    # Slices bound how many document locks (open files) one call holds at once.
    for start in range(0, len(items), _REGISTER_SLICE):
        results.extend(_register_slice(rt, items[start : start + _REGISTER_SLICE], tenant=tenant, source=source))
    return results


_REGISTER_SLICE = 256


def _register_slice(rt: Runtime, items: list[RegisterItem], *, tenant: str, source: str) -> list[RegisterResult]:
    doc_ids = [i.doc_id for i in items if i.doc_id]
    results: list[RegisterResult] = []
    raw_rows: list[dict[str, Any]] = []
    silver_rows: dict[str, dict[str, Any]] = {}
    with _doc_locks(rt, tenant, doc_ids):
        current: dict[str, dict[str, Any]] = get_documents(rt.lake, tenant, doc_ids)
        event_versions = newest_event_versions(rt.lake, tenant, doc_ids)
        for item in items:
            assert item.doc_id is not None
            doc_id, data, metadata = item.doc_id, item.data, item.metadata
            sha = sha256_hex(data)
            cur = current.get(doc_id)
            # A failed version is not a duplicate: uploading the same bytes again is how a user retries it.
            if cur is not None and cur["status"] not in (DocumentStatus.deleted, DocumentStatus.failed):
                same_meta = metadata is None or json.loads(cur["metadata_json"] or "{}") == metadata
                if cur["content_sha256"] == sha and same_meta:
                    results.append(
                        RegisterResult(doc_id=doc_id, version=cur["version"], status=cur["status"], duplicate=True)
                    )
                    continue
            if metadata is None:
                alive = cur is not None and cur["status"] != DocumentStatus.deleted
                metadata = json.loads(cur["metadata_json"] or "{}") if alive and cur else {}
            # Above pending change events too (bronze.document_updates): the stream must not undo this upload.
            version = max(cur["version"] if cur else 0, event_versions.get(doc_id, 0)) + 1
            # An object that arrived in the store by itself (an S3 event) is referenced, not copied.
            uri = item.stored_uri or rt.objects.put(raw_key(tenant, doc_id, version, sha), data)
            meta_json = json.dumps(metadata, sort_keys=True)
            raw_rows.append(
                {
                    "tenant": tenant,
                    "doc_id": doc_id,
                    "version": version,
                    "uri": uri,
                    "sha256": sha,
                    "size_bytes": len(data),
                    "filename": item.filename,
                    "source": source,
                    "metadata_json": meta_json,
                }
            )
            row = {
                "tenant": tenant,
                "doc_id": doc_id,
                "version": version,
                "status": DocumentStatus.queued.value,
                "filename": item.filename,
                "source_uri": uri,
                "content_sha256": sha,
                "size_bytes": len(data),
                "metadata_json": meta_json,
                "chunks": 0,
                "chunks_embedded": 0,
                "chunks_reused": 0,
            }
            # The newest version of a document in the batch is the one silver keeps.
            silver_rows[doc_id] = current[doc_id] = row
            results.append(RegisterResult(doc_id=doc_id, version=version, status=DocumentStatus.queued))
        record_raw_objects(rt.lake, raw_rows)
        insert_versions(rt.lake, list(silver_rows.values()))
    return results


def extract_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> bool:
    """Extract the raw object's text into silver. Returns False when there was nothing to do.

    Raises:
        ExtractionError (and subclasses): the file cannot be read; not retryable.
        StaleVersion: a newer version superseded this one.
    """
    result: bool = _single(extract_many(rt, tenant, {doc_id: version}), doc_id)
    return result


def extract_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``extract_step`` for many documents (doc_id → version) with two silver commits in all.

    A file that cannot be read is that document's error; the others go on.
    """
    from pipelines.extract import ExtractConfig, extract_bytes

    rows = get_documents(rt.lake, tenant, list(versions))
    results, ready = _triage(rows, versions, (DocumentStatus.queued, DocumentStatus.extracting), idle=False)
    todo = {d: versions[d] for d in ready}
    started = update_documents(rt.lake, tenant, todo, status=DocumentStatus.extracting.value, error=None)
    config = ExtractConfig(timeout_s=rt.settings.extract_timeout_s, memory_mb=rt.settings.extract_memory_mb)
    changes: dict[str, dict[str, Any]] = {}
    for doc_id in todo:
        if doc_id not in started:
            results[doc_id] = StaleVersion("superseded before extraction", doc_id=doc_id)
            continue
        row = rows[doc_id]
        try:
            data = rt.objects.get(row["source_uri"])
            document = extract_bytes(data, doc_id=doc_id, filename=row["filename"], config=config)
        except Exception as e:  # one unreadable file is its document's error, not the batch's
            results[doc_id] = e
            continue
        changes[doc_id] = {
            "format": document.format.value,
            "mime": document.mime,
            "text": document.text,
            "elements_json": json.dumps([e.model_dump(mode="json") for e in document.elements]),
            "page_count": document.page_count,
            "page_errors_json": json.dumps([p.model_dump() for p in document.page_errors]),
        }
    columns = {name: {d: c[name] for d, c in changes.items()} for name in next(iter(changes.values()), {})}
    updated = update_documents(
        rt.lake, tenant, {d: versions[d] for d in changes}, status=DocumentStatus.embedding.value, **columns
    )
    for doc_id in changes:
        results[doc_id] = True if doc_id in updated else StaleVersion("superseded while extracting", doc_id=doc_id)
    return results


class ChunkEmbedResult(BaseModel):
    chunks: int
    embedded: int
    reused: int
    removed: int


class ChunkPlan(BaseModel):
    """The gold rows one document version should have, and how many vectors were computed for them."""

    rows: list[dict[str, Any]]
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
    document: ExtractedDocument,
    *,
    tenant: str,
    doc_id: str,
    version: int,
    filename: str | None,
    metadata_json: str,
    index: IndexSpec | None = None,
    cache_from: tuple[TableSpec, ...] = (),
) -> ChunkPlan:
    """Chunk a document and embed only chunks gold does not already hold (writes nothing).

    Vectors are reused when the same model already embedded the same text: first the document's
    own chunks (an unchanged chunk keeps its id and vector), then any chunk in the index's gold or
    in ``cache_from`` (a reindex passes the gold it replaces). The Celery step, the Spark stream and
    reindex all build their gold rows here, for ``index`` (default: the active one).
    """
    request = PlanRequest(
        document=document, doc_id=doc_id, version=version, filename=filename, metadata_json=metadata_json
    )
    return plan_chunks_many(rt, tenant, [request], index=index, cache_from=cache_from)[doc_id]


def plan_chunks_many(
    rt: Runtime,
    tenant: str,
    requests: list[PlanRequest],
    *,
    index: IndexSpec | None = None,
    cache_from: tuple[TableSpec, ...] = (),
) -> dict[str, ChunkPlan]:
    """``plan_chunks`` for many documents of a tenant (by doc_id): one gold read, one cache lookup
    and one encode call for all of them, so small documents fill the model's batches."""
    index = index or rt.index()
    config = index.chunker
    tokenizer = rt.tokenizer(index)
    model_id = index.model_id
    chunked = {r.doc_id: chunk_document(r.document, tokenizer=tokenizer, config=config) for r in requests}

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
    missing = [c.text_sha256 for chunks in chunked.values() for c in chunks if c.text_sha256 not in own]
    golds = (index.gold, *cache_from)
    cache = {**cached_embeddings(rt.lake, model_id, missing, tenant=tenant, golds=golds), **own} if missing else own
    to_embed = sorted(
        {c.text_sha256: c.text for chunks in chunked.values() for c in chunks if c.text_sha256 not in cache}.items()
    )
    vectors = rt.embedder(index).encode([text for _, text in to_embed]) if to_embed else []
    fresh = {sha: vec for (sha, _), vec in zip(to_embed, vectors, strict=True)}

    plans: dict[str, ChunkPlan] = {}
    for r in requests:
        chunks = chunked[r.doc_id]
        rows = [
            {
                "tenant": tenant,
                "chunk_id": chunk_id_for(tenant, r.doc_id, c.text_sha256, c.occurrence),
                "doc_id": r.doc_id,
                "doc_version": r.version,
                "ordinal": c.ordinal,
                "text": c.text,
                "text_sha256": c.text_sha256,
                "page_start": c.page_start,
                "page_end": c.page_end,
                "char_start": c.char_start,
                "char_end": c.char_end,
                "heading_path": c.heading_path,
                "embedding": fresh.get(c.text_sha256) or cache[c.text_sha256],
                "model_id": model_id,
                "chunker_id": config.config_id,
                "filename": r.filename,
                "metadata_json": r.metadata_json,
            }
            for c in chunks
        ]
        embedded = {c.text_sha256 for c in chunks if c.text_sha256 in fresh}
        plans[r.doc_id] = ChunkPlan(
            rows=rows,
            embedded=len(embedded),
            reused=len(rows) - sum(1 for c in chunks if c.text_sha256 in fresh),
            removed=len(old_ids.get(r.doc_id, set()) - {row["chunk_id"] for row in rows}),
        )
    return plans


def chunk_embed_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> ChunkEmbedResult | None:
    """Chunk silver text, embed only chunks gold does not already hold, and MERGE gold.

    Returns None when the step had already run for this version.
    """
    result: ChunkEmbedResult | None = _single(chunk_embed_many(rt, tenant, {doc_id: version}), doc_id)
    return result


def chunk_embed_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``chunk_embed_step`` for many documents: one encode call, one gold MERGE, one silver commit."""
    rows = get_documents(rt.lake, tenant, list(versions), with_text=True)
    results, ready = _triage(rows, versions, (DocumentStatus.embedding,), idle=None)
    if not ready:
        return results
    for _ in range(3):
        index = rt.index()
        plans = _plan_rows(rt, tenant, list(ready.values()), index)
        with _doc_locks(rt, tenant, ready):
            # A delete or new version may have landed while embedding.
            current = get_documents(rt.lake, tenant, list(ready))
            if rt.index(fresh=True).index_id != index.index_id:
                continue  # a reindex switched indexes while this step embedded: plan for the new one
            keep: dict[str, int] = {}
            for doc_id in ready:
                error = _version_error(current.get(doc_id), doc_id, versions[doc_id])
                if error is not None:
                    results[doc_id] = error
                else:
                    keep[doc_id] = versions[doc_id]
            if keep:
                replace_docs_chunks(
                    rt.lake, tenant, list(keep), [r for d in keep for r in plans[d].rows], gold=index.gold
                )
                update_documents(
                    rt.lake,
                    tenant,
                    keep,
                    chunks={d: len(plans[d].rows) for d in keep},
                    chunks_embedded={d: plans[d].embedded for d in keep},
                    chunks_reused={d: plans[d].reused for d in keep},
                    model_id=index.model_id,
                    chunker_id=index.chunker.config_id,
                )
        for doc_id in keep:
            plan = plans[doc_id]
            results[doc_id] = ChunkEmbedResult(
                chunks=len(plan.rows), embedded=plan.embedded, reused=plan.reused, removed=plan.removed
            )
            log.info("chunk_embed doc=%s v=%d %s", doc_id, versions[doc_id], results[doc_id].model_dump())
        return results
    for doc_id in ready:
        results[doc_id] = IndexSwitched("the active index kept changing during chunk_embed", doc_id=doc_id)
    return results


def _plan_request(row: dict[str, Any]) -> PlanRequest:
    return PlanRequest(
        document=stored_document(row),
        doc_id=row["doc_id"],
        version=row["version"],
        filename=row["filename"],
        metadata_json=row["metadata_json"] or "{}",
    )


def _plan_rows(
    rt: Runtime,
    tenant: str,
    rows: list[dict[str, Any]],
    index: IndexSpec,
    *,
    cache_from: tuple[TableSpec, ...] = (),
) -> dict[str, ChunkPlan]:
    """The chunk plans of silver rows (with text) of one tenant for ``index``, by doc_id."""
    return plan_chunks_many(rt, tenant, [_plan_request(r) for r in rows], index=index, cache_from=cache_from)


def _plan_row(
    rt: Runtime, row: dict[str, Any], index: IndexSpec, *, cache_from: tuple[TableSpec, ...] = ()
) -> ChunkPlan:
    """The chunk plan of a silver row (with text) for ``index``."""
    return _plan_rows(rt, row["tenant"], [row], index, cache_from=cache_from)[row["doc_id"]]


def vector_records(gold_rows: list[dict[str, Any]], metadata: dict[str, MetadataValue]) -> list[VectorRecord]:
    """Vector-store records of gold rows (one document's metadata applies to all of them)."""
    return [
        VectorRecord(
            id=g["chunk_id"],
            tenant=g["tenant"],
            doc_id=g["doc_id"],
            doc_version=g["doc_version"],
            vector=g["embedding"],
            text=g["text"],
            filename=g["filename"],
            page_start=g["page_start"],
            page_end=g["page_end"],
            char_start=g["char_start"],
            char_end=g["char_end"],
            metadata=metadata,
        )
        for g in gold_rows
    ]


def mirror_document(rt: Runtime, index: IndexSpec, tenant: str, doc_id: str, metadata: dict[str, MetadataValue]) -> int:
    """Make the index's vector store hold exactly the document's gold rows of that index.

    Upsert first, delete stale ids second: search never sees the document without vectors.
    """
    return mirror_documents(rt, index, tenant, {doc_id: metadata})[doc_id]


def mirror_documents(
    rt: Runtime, index: IndexSpec, tenant: str, metadata: dict[str, dict[str, MetadataValue]]
) -> dict[str, int]:
    """``mirror_document`` for many documents (doc_id → its metadata): one gold read, one upsert."""
    gold = docs_chunks(rt.lake, tenant, list(metadata), gold=index.gold).to_pylist()
    by_doc: dict[str, list[dict[str, Any]]] = {d: [] for d in metadata}
    for g in gold:
        by_doc[g["doc_id"]].append(g)
    records = {d: vector_records(rows, metadata[d]) for d, rows in by_doc.items()}
    store = rt.vectors_for(index)
    store.upsert([r for recs in records.values() for r in recs])
    for doc_id, recs in records.items():
        keep = {r.id for r in recs}
        stale = [i for i in store.document_ids(tenant, doc_id) if i not in keep]
        if stale:
            store.delete(stale, tenant=tenant, doc_id=doc_id)
    return {d: len(recs) for d, recs in records.items()}


def mirror_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> int:
    """Mirror the document's gold rows to the vector store, drop its stale ids, mark it indexed.

    Returns how many vectors were written (0 when already indexed).
    """
    written: int = _single(mirror_many(rt, tenant, {doc_id: version}), doc_id)
    return written


def mirror_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``mirror_step`` for many documents: one gold read, one upsert, one silver commit."""
    with _doc_locks(rt, tenant, versions):
        rows = get_documents(rt.lake, tenant, list(versions))
        results, ready = _triage(rows, versions, (DocumentStatus.embedding, DocumentStatus.indexed), idle=0)
        if not ready:
            return results
        index = rt.index(fresh=True)
        gold = docs_chunks(rt.lake, tenant, list(ready), columns=["doc_id", "doc_version"], gold=index.gold)
        behind = sorted(
            {
                d
                for d, v in zip(gold.column("doc_id").to_pylist(), gold.column("doc_version").to_pylist(), strict=True)
                if v != versions[d]
            }
        )
        if behind:
            # chunk_embed wrote these versions to the index a reindex just replaced: build them here for
            # the active index (vectors come from the old gold when the model is the same).
            full = get_documents(rt.lake, tenant, behind, with_text=True)
            plans = _plan_rows(
                rt, tenant, [full[d] for d in behind], index, cache_from=tuple(i.gold for i in rt.indexes())
            )
            replace_docs_chunks(rt.lake, tenant, behind, [r for p in plans.values() for r in p.rows], gold=index.gold)
        written = mirror_documents(
            rt, index, tenant, {d: json.loads(row["metadata_json"] or "{}") for d, row in ready.items()}
        )
        update_documents(
            rt.lake, tenant, {d: versions[d] for d in ready}, status=DocumentStatus.indexed.value, error=None
        )
    results.update(written)
    return results


def mark_failed(rt: Runtime, tenant: str, doc_id: str, version: int, error: str) -> bool:
    """Record a terminal failure on the version (no-op if a newer version superseded it)."""
    return update_document(rt.lake, tenant, doc_id, version, status=DocumentStatus.failed.value, error=error[:4000])


STEPS: dict[str, Callable[[Runtime, str, dict[str, int]], Results]] = {
    "extract": extract_many,
    "chunk_embed": chunk_embed_many,
    "mirror": mirror_many,
}


class StepOutcome(BaseModel):
    """What became of one step: the adapters (Celery, the stream, inline runs) act on this."""

    state: Literal["done", "skipped", "retry", "failed"]
    error: str | None = None
    result: Any = None


def run_step(rt: Runtime, step: str, tenant: str, doc_id: str, version: int, *, can_retry: bool) -> StepOutcome:
    """Run a step for one document version and map its errors (see ``run_many``)."""
    return run_many(rt, step, tenant, {doc_id: version}, can_retry=can_retry)[doc_id]


def run_many(
    rt: Runtime, step: str, tenant: str, versions: dict[str, int], *, can_retry: bool
) -> dict[str, StepOutcome]:
    """Run a step for document versions of a tenant and map each one's error: the single
    retry/failure policy of every adapter.

    A stale version is skipped; a retryable or unexpected error asks for a retry while ``can_retry``;
    a non-retryable doclake error (a bad file), or any error once retries are spent, is recorded as the
    version's ``failed`` status: a document never stays without a terminal state. An error of the
    whole call (a commit, the model) is every document's error.
    """
    started = time.perf_counter()
    try:
        results = STEPS[step](rt, tenant, versions)
    except Exception as e:  # mapped per document below, like any other error
        results = dict.fromkeys(versions, e)
    outcomes = {d: _outcome(step, d, versions[d], r, can_retry=can_retry) for d, r in results.items()}
    failed = {d: o.error or "" for d, o in outcomes.items() if o.state == "failed"}
    if failed:
        update_documents(
            rt.lake,
            tenant,
            {d: versions[d] for d in failed},
            status=DocumentStatus.failed.value,
            error={d: e[:4000] for d, e in failed.items()},
        )
    # A document's share of the call: a batch of 32 that took 3 s is ~0.1 s of work per document.
    share = (time.perf_counter() - started) / max(1, len(versions))
    for outcome in outcomes.values():
        metrics.STEP_OUTCOMES.labels(step=step, state=outcome.state).inc()
        if outcome.state == "done":
            metrics.STEP_DURATION.labels(step=step).observe(share)
            if isinstance(outcome.result, ChunkEmbedResult):
                metrics.CHUNKS.labels(source="embedded").inc(outcome.result.embedded)
                metrics.CHUNKS.labels(source="reused").inc(outcome.result.reused)
    return outcomes


def _outcome(step: str, doc_id: str, version: int, result: Any, *, can_retry: bool) -> StepOutcome:
    if not isinstance(result, BaseException):
        return StepOutcome(state="done", result=result)
    if isinstance(result, StaleVersion):
        log.info("skip %s doc=%s v=%d: %s", step, doc_id, version, result)
        return StepOutcome(state="skipped", error=result.describe())
    if isinstance(result, DocLakeError):
        if result.retryable and can_retry:
            return StepOutcome(state="retry", error=result.describe())
        log.warning("%s failed doc=%s v=%d: %s", step, doc_id, version, result.describe())
        return StepOutcome(state="failed", error=result.describe())
    log.error("%s crashed doc=%s v=%d", step, doc_id, version, exc_info=result)
    error = f"internal_error: {type(result).__name__}: {result}"
    # Unknown errors may be transient (a resource, a race): retry them like retryable ones;
    # a true bug fails every retry and then ends in `failed` like any poison document.
    return StepOutcome(state="retry" if can_retry else "failed", error=error)


def process_inline(rt: Runtime, tenant: str, doc_id: str, version: int) -> StepOutcome:
    """Run every step in this process, in order (tests, the CLI, batch jobs without a broker)."""
    outcome = StepOutcome(state="skipped")
    for step in STEPS:
        outcome = run_step(rt, step, tenant, doc_id, version, can_retry=False)
        if outcome.state != "done":
            break
    return outcome


def process_inline_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> dict[str, StepOutcome]:
    """``process_inline`` for many documents, a step at a time, as the batch tasks run them."""
    outcomes: dict[str, StepOutcome] = {}
    pending = dict(versions)
    for step in STEPS:
        if not pending:
            break
        outcomes.update(run_many(rt, step, tenant, pending, can_retry=False))
        pending = {d: v for d, v in pending.items() if outcomes[d].state == "done"}
    return outcomes
