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
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

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
from pipelines.lakehouse.chunks import cached_embeddings, doc_chunks, replace_doc_chunks
from pipelines.lakehouse.documents import (
    get_document,
    insert_version,
    record_raw_object,
    update_document,
)
from pipelines.lakehouse.schemas import TableSpec
from pipelines.lakehouse.updates import newest_event_version
from pipelines.objectstore import raw_key
from pipelines.runtime import Runtime

__all__ = [
    "ChunkEmbedResult",
    "ChunkPlan",
    "chunk_embed_step",
    "extract_step",
    "mark_failed",
    "mirror_step",
    "plan_chunks",
    "process_inline",
    "register_object",
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
    if row is None:
        raise DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
    if row["version"] != version:
        raise StaleVersion(f"version {version} is not current (current is {row['version']})", doc_id=doc_id)
    return row


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
    sha = sha256_hex(data)
    doc_id = validate_doc_id(doc_id) if doc_id else f"d{sha[:24]}"
    validate_doc_id(tenant, what="tenant")
    if metadata is not None:
        metadata = validate_metadata(metadata, doc_id=doc_id)
    with rt.doc_lock(tenant, doc_id):
        current = get_document(rt.lake, tenant, doc_id)
        # A failed version is not a duplicate: uploading the same bytes again is how a user retries it.
        if current is not None and current["status"] not in (DocumentStatus.deleted, DocumentStatus.failed):
            same_meta = metadata is None or json.loads(current["metadata_json"] or "{}") == metadata
            if current["content_sha256"] == sha and same_meta:
                return RegisterResult(
                    doc_id=doc_id, version=current["version"], status=current["status"], duplicate=True
                )
        if metadata is None:
            alive = current is not None and current["status"] != DocumentStatus.deleted
            metadata = json.loads(current["metadata_json"] or "{}") if alive and current else {}
        # Above pending change events too (bronze.document_updates): the stream must not undo this upload.
        version = max(current["version"] if current else 0, newest_event_version(rt.lake, tenant, doc_id)) + 1
        # An object that arrived in the store by itself (an S3 event) is referenced, not copied.
        uri = stored_uri or rt.objects.put(raw_key(tenant, doc_id, version, sha), data)
        meta_json = json.dumps(metadata, sort_keys=True)
        record_raw_object(
            rt.lake,
            {
                "tenant": tenant,
                "doc_id": doc_id,
                "version": version,
                "uri": uri,
                "sha256": sha,
                "size_bytes": len(data),
                "filename": filename,
                "source": source,
                "metadata_json": meta_json,
            },
        )
        insert_version(
            rt.lake,
            {
                "tenant": tenant,
                "doc_id": doc_id,
                "version": version,
                "status": DocumentStatus.queued.value,
                "filename": filename,
                "source_uri": uri,
                "content_sha256": sha,
                "size_bytes": len(data),
                "metadata_json": meta_json,
                "chunks": 0,
                "chunks_embedded": 0,
                "chunks_reused": 0,
            },
        )
    return RegisterResult(doc_id=doc_id, version=version, status=DocumentStatus.queued)


def extract_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> bool:
    """Extract the raw object's text into silver. Returns False when there was nothing to do.

    Raises:
        ExtractionError (and subclasses): the file cannot be read; not retryable.
        StaleVersion: a newer version superseded this one.
    """
    from pipelines.extract import ExtractConfig, extract_bytes

    row = _current(rt, tenant, doc_id, version)
    if row["status"] not in (DocumentStatus.queued, DocumentStatus.extracting):
        return False
    update_document(rt.lake, tenant, doc_id, version, status=DocumentStatus.extracting.value, error=None)
    data = rt.objects.get(row["source_uri"])
    config = ExtractConfig(timeout_s=rt.settings.extract_timeout_s, memory_mb=rt.settings.extract_memory_mb)
    document = extract_bytes(data, doc_id=doc_id, filename=row["filename"], config=config)
    updated = update_document(
        rt.lake,
        tenant,
        doc_id,
        version,
        status=DocumentStatus.embedding.value,
        format=document.format.value,
        mime=document.mime,
        text=document.text,
        elements_json=json.dumps([e.model_dump(mode="json") for e in document.elements]),
        page_count=document.page_count,
        page_errors_json=json.dumps([p.model_dump() for p in document.page_errors]),
    )
    if not updated:
        raise StaleVersion("superseded while extracting", doc_id=doc_id)
    return True


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
    index = index or rt.index()
    config = index.chunker
    chunks = chunk_document(document, tokenizer=rt.tokenizer(index), config=config)
    model_id = index.model_id

    existing = doc_chunks(
        rt.lake, tenant, doc_id, columns=["chunk_id", "text_sha256", "embedding", "model_id"], gold=index.gold
    )
    own: dict[str, list[float]] = {}
    for sha, emb, mid in zip(
        existing.column("text_sha256").to_pylist(),
        existing.column("embedding").to_pylist(),
        existing.column("model_id").to_pylist(),
        strict=True,
    ):
        if mid == model_id and emb:
            own.setdefault(sha, emb)
    missing = [c.text_sha256 for c in chunks if c.text_sha256 not in own]
    golds = (index.gold, *cache_from)
    cache = {**cached_embeddings(rt.lake, model_id, missing, tenant=tenant, golds=golds), **own} if missing else own
    to_embed = sorted({c.text_sha256: c.text for c in chunks if c.text_sha256 not in cache}.items())
    vectors = rt.embedder(index).encode([text for _, text in to_embed]) if to_embed else []
    fresh = {sha: vec for (sha, _), vec in zip(to_embed, vectors, strict=True)}

    rows = [
        {
            "tenant": tenant,
            "chunk_id": chunk_id_for(tenant, doc_id, c.text_sha256, c.occurrence),
            "doc_id": doc_id,
            "doc_version": version,
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
            "filename": filename,
            "metadata_json": metadata_json,
        }
        for c in chunks
    ]
    return ChunkPlan(
        rows=rows, embedded=len(fresh), reused=len(rows) - sum(1 for c in chunks if c.text_sha256 in fresh)
    )


def chunk_embed_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> ChunkEmbedResult | None:
    """Chunk silver text, embed only chunks gold does not already hold, and MERGE gold.

    Returns None when the step had already run for this version.
    """
    row = _current(rt, tenant, doc_id, version, with_text=True)
    if row["status"] != DocumentStatus.embedding:
        return None
    for _ in range(3):
        index = rt.index()
        plan = _plan_row(rt, row, index)
        with rt.doc_lock(tenant, doc_id):
            _current(rt, tenant, doc_id, version)  # a delete or new version may have landed while embedding
            if rt.index(fresh=True).index_id != index.index_id:
                continue  # a reindex switched indexes while this step embedded: plan for the new one
            metrics = replace_doc_chunks(rt.lake, tenant, doc_id, plan.rows, gold=index.gold)
            update_document(
                rt.lake,
                tenant,
                doc_id,
                version,
                chunks=len(plan.rows),
                chunks_embedded=plan.embedded,
                chunks_reused=plan.reused,
                model_id=index.model_id,
                chunker_id=index.chunker.config_id,
            )
        result = ChunkEmbedResult(
            chunks=len(plan.rows),
            embedded=plan.embedded,
            reused=plan.reused,
            removed=int(metrics.get("num_target_rows_deleted", 0)),
        )
        log.info("chunk_embed doc=%s v=%d %s", doc_id, version, result.model_dump())
        return result
    raise IndexSwitched("the active index kept changing during chunk_embed", doc_id=doc_id)


def _plan_row(
    rt: Runtime, row: dict[str, Any], index: IndexSpec, *, cache_from: tuple[TableSpec, ...] = ()
) -> ChunkPlan:
    """The chunk plan of a silver row (with text) for ``index``."""
    return plan_chunks(
        rt,
        stored_document(row),
        tenant=row["tenant"],
        doc_id=row["doc_id"],
        version=row["version"],
        filename=row["filename"],
        metadata_json=row["metadata_json"] or "{}",
        index=index,
        cache_from=cache_from,
    )


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
    gold = doc_chunks(rt.lake, tenant, doc_id, gold=index.gold).to_pylist()
    records = vector_records(gold, metadata)
    store = rt.vectors_for(index)
    store.upsert(records)
    keep = {r.id for r in records}
    stale = [i for i in store.document_ids(tenant, doc_id) if i not in keep]
    store.delete(stale, tenant=tenant, doc_id=doc_id)
    return len(records)


def mirror_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> int:
    """Mirror the document's gold rows to the vector store, drop its stale ids, mark it indexed.

    Returns how many vectors were written (0 when already indexed).
    """
    with rt.doc_lock(tenant, doc_id):
        row = _current(rt, tenant, doc_id, version)
        if row["status"] not in (DocumentStatus.embedding, DocumentStatus.indexed):
            return 0
        index = rt.index(fresh=True)
        versions = doc_chunks(rt.lake, tenant, doc_id, columns=["doc_version"], gold=index.gold)
        if any(v != version for v in versions.column("doc_version").to_pylist()):
            # chunk_embed wrote this version to the index a reindex just replaced: build it here for
            # the active index (vectors come from the old gold when the model is the same).
            full = _current(rt, tenant, doc_id, version, with_text=True)
            plan = _plan_row(rt, full, index, cache_from=tuple(i.gold for i in rt.indexes()))
            replace_doc_chunks(rt.lake, tenant, doc_id, plan.rows, gold=index.gold)
        written = mirror_document(rt, index, tenant, doc_id, json.loads(row["metadata_json"] or "{}"))
        update_document(rt.lake, tenant, doc_id, version, status=DocumentStatus.indexed.value, error=None)
    return written


def mark_failed(rt: Runtime, tenant: str, doc_id: str, version: int, error: str) -> bool:
    """Record a terminal failure on the version (no-op if a newer version superseded it)."""
    return update_document(rt.lake, tenant, doc_id, version, status=DocumentStatus.failed.value, error=error[:4000])


STEPS: dict[str, Callable[[Runtime, str, str, int], Any]] = {
    "extract": extract_step,
    "chunk_embed": chunk_embed_step,
    "mirror": mirror_step,
}


class StepOutcome(BaseModel):
    """What became of one step: the adapters (Celery, the stream, inline runs) act on this."""

    state: Literal["done", "skipped", "retry", "failed"]
    error: str | None = None
    result: Any = None


def run_step(rt: Runtime, step: str, tenant: str, doc_id: str, version: int, *, can_retry: bool) -> StepOutcome:
    """Run a step and map its errors: the single retry/failure policy of every adapter.

    A stale version is skipped; a retryable or unexpected error asks for a retry while ``can_retry``;
    a non-retryable doclake error (a bad file), or any error once retries are spent, is recorded as the
    version's ``failed`` status: a document never stays without a terminal state.
    """
    started = time.perf_counter()
    outcome = _run_step(rt, step, tenant, doc_id, version, can_retry=can_retry)
    metrics.STEP_OUTCOMES.labels(step=step, state=outcome.state).inc()
    if outcome.state == "done":
        metrics.STEP_DURATION.labels(step=step).observe(time.perf_counter() - started)
        if isinstance(outcome.result, ChunkEmbedResult):
            metrics.CHUNKS.labels(source="embedded").inc(outcome.result.embedded)
            metrics.CHUNKS.labels(source="reused").inc(outcome.result.reused)
    return outcome


def _run_step(rt: Runtime, step: str, tenant: str, doc_id: str, version: int, *, can_retry: bool) -> StepOutcome:
    try:
        return StepOutcome(state="done", result=STEPS[step](rt, tenant, doc_id, version))
    except StaleVersion as e:
        log.info("skip %s doc=%s v=%d: %s", step, doc_id, version, e)
        return StepOutcome(state="skipped", error=e.describe())
    except DocLakeError as e:
        if e.retryable and can_retry:
            return StepOutcome(state="retry", error=e.describe())
        log.warning("%s failed doc=%s v=%d: %s", step, doc_id, version, e.describe())
        mark_failed(rt, tenant, doc_id, version, e.describe())
        return StepOutcome(state="failed", error=e.describe())
    except Exception as e:
        log.exception("%s crashed doc=%s v=%d", step, doc_id, version)
        error = f"internal_error: {type(e).__name__}: {e}"
        if can_retry:
            # Unknown errors may be transient (a resource, a race): retry them like retryable ones;
            # a true bug fails every retry and then ends in `failed` like any poison document.
            return StepOutcome(state="retry", error=error)
        mark_failed(rt, tenant, doc_id, version, error)
        return StepOutcome(state="failed", error=error)


def process_inline(rt: Runtime, tenant: str, doc_id: str, version: int) -> StepOutcome:
    """Run every step in this process, in order (tests, the CLI, batch jobs without a broker)."""
    outcome = StepOutcome(state="skipped")
    for step in STEPS:
        outcome = run_step(rt, step, tenant, doc_id, version, can_retry=False)
        if outcome.state != "done":
            break
    return outcome
