"""Evaluate every product's checks and freshness SLO against the live tables and the vector store.

The checks that compare gold with the vector store only look at documents *at rest* (``indexed``
or ``failed``): while a version is being embedded, gold already holds its new chunks and the store
still the old ones, which is the designed order (upsert first, delete stale ids second), not a breach.
A ``failed`` new version keeps its previous version's chunks searchable, so it is at rest too.

Latest results are written to the runtime's shared records (``<data>/run/products/latest.json`` beside
a local lake, an object beside a lake on S3), replaced whole, so the API of any host can serve
them without re-reading every table on each request.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import QueryBuilder
from pydantic import BaseModel, Field, ValidationError

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import to_record
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS, RAW_OBJECTS
from pipelines.products.manifests import MANIFESTS, ProductManifest
from pipelines.runtime import Runtime

__all__ = ["CheckResult", "ProductReport", "evaluate", "load_latest", "run_checks"]

_AT_REST = {DocumentStatus.indexed.value, DocumentStatus.failed.value}
_EXAMPLES = 5


class CheckResult(BaseModel):
    check: str
    ok: bool
    observed: float | int | str = Field(description="The measured value (a count, an age in seconds…).")
    detail: str
    examples: list[str] = Field(default_factory=list, description="A few offending ids, when there are any.")


class ProductReport(BaseModel):
    product: str
    ok: bool
    checked_at: datetime
    results: list[CheckResult]


def _result(check: str, bad: list[str], what: str, *, observed: float | int | str | None = None) -> CheckResult:
    return CheckResult(
        check=check,
        ok=not bad,
        observed=len(bad) if observed is None else observed,
        detail=f"{len(bad)} {what}" if bad else "ok",
        examples=sorted(bad)[:_EXAMPLES],
    )


class _Snapshot:
    """One read of silver, gold and the store, shared by every check."""

    def __init__(self, rt: Runtime, now: datetime) -> None:
        columns = [f.name for f in DOCUMENTS.schema if f.name not in ("text", "elements_json")]
        self.docs: list[dict[str, Any]] = rt.lake.read(DOCUMENTS, columns=columns).to_pylist()
        sql = "SELECT tenant, chunk_id, doc_id, model_id, cardinality(embedding) AS dim FROM t"
        reader = QueryBuilder().register("t", rt.lake.table(rt.index().gold)).execute(sql)
        self.chunks: list[dict[str, Any]] = pa.table(reader.read_all()).to_pylist()
        self.vectors = [(s.tenant, s.id, s.doc_id) for s in rt.vectors.iter_ids()]
        self.status = {(d["tenant"], d["doc_id"]): d["status"] for d in self.docs}
        self.now = now
        self.received = self._received(rt)

    def _received(self, rt: Runtime) -> dict[tuple[str, str, int], datetime]:
        """When each pending version arrived (bronze), the clock of the freshness SLOs.

        Not silver's updated_at: the sweeper refreshes it on every re-enqueue, which would hide a
        document that keeps getting stuck.
        """
        pending = [d for d in self.docs if not DocumentStatus(d["status"]).terminal]
        if not pending:
            return {}
        ids = ", ".join(sorted({sql_quote(d["doc_id"]) for d in pending}))
        rows = rt.lake.read(RAW_OBJECTS, f"doc_id IN ({ids})", columns=["tenant", "doc_id", "version", "received_at"])
        return {(r["tenant"], r["doc_id"], r["version"]): r["received_at"] for r in rows.to_pylist()}

    def at_rest(self, tenant: str, doc_id: str) -> bool:
        return self.status.get((tenant, doc_id)) in _AT_REST


def _freshness(snap: _Snapshot, manifest: ProductManifest, waiting: set[str]) -> CheckResult:
    ages: dict[str, float] = {}
    for d in snap.docs:
        since = snap.received.get((d["tenant"], d["doc_id"], d["version"])) or d["updated_at"]
        if d["status"] in waiting and since is not None:
            ages[f"{d['doc_id']} ({d['status']})"] = (snap.now - since).total_seconds()
    oldest = max(ages.values(), default=0.0)
    late = [doc for doc, age in ages.items() if age > manifest.freshness_slo_s]
    return CheckResult(
        check="freshness",
        ok=not late,
        observed=round(oldest, 3),
        detail=f"{len(late)} waiting longer than {manifest.freshness_slo_s:.0f}s" if late else "ok",
        examples=sorted(late)[:_EXAMPLES],
    )


def _documents(snap: _Snapshot) -> list[CheckResult]:
    manifest = MANIFESTS["documents"]
    invalid: list[str] = []
    for d in snap.docs:
        try:
            to_record(d)
        except (ValidationError, ValueError, KeyError):
            invalid.append(d["doc_id"])
    per_doc = Counter((c["tenant"], c["doc_id"]) for c in snap.chunks)
    indexed = [d for d in snap.docs if d["status"] == DocumentStatus.indexed]
    return [
        _freshness(snap, manifest, {DocumentStatus.queued.value, DocumentStatus.extracting.value}),
        _result("rows_match_contract", invalid, "rows do not validate"),
        _result(
            "failed_have_error",
            [d["doc_id"] for d in snap.docs if d["status"] == DocumentStatus.failed and not d["error"]],
            "failed documents without an error",
        ),
        _result(
            "indexed_have_chunks",
            [d["doc_id"] for d in indexed if per_doc[(d["tenant"], d["doc_id"])] == 0],
            "indexed documents without chunks",
        ),
        _result(
            "chunk_counts_match",
            [d["doc_id"] for d in indexed if (d["chunks"] or 0) != per_doc[(d["tenant"], d["doc_id"])]],
            "indexed documents whose chunk count differs from gold",
        ),
        *_page_quality(indexed, manifest),
    ]


def _page_quality(indexed: list[dict[str, Any]], manifest: ProductManifest) -> list[CheckResult]:
    """Extraction quality as a service level: pages that yielded text, and OCR pages read with low confidence."""
    slo = manifest.pages_with_text_slo if manifest.pages_with_text_slo is not None else 1.0
    floor = manifest.low_confidence_below if manifest.low_confidence_below is not None else 0.0
    pages = 0
    empty: list[str] = []
    ocr_pages = 0
    low: list[str] = []
    for d in indexed:
        if not d.get("page_count"):
            continue
        pages += d["page_count"]
        read = {p["page"]: p for p in json.loads(d.get("pages_json") or "[]")}
        for number in range(1, d["page_count"] + 1):
            page = read.get(number)
            if page is None or not page["chars"]:
                empty.append(f"{d['doc_id']} p.{number}")
            if page is not None and page["source"] == "ocr":
                ocr_pages += 1
                if page.get("ocr_confidence") is not None and page["ocr_confidence"] < floor:
                    low.append(f"{d['doc_id']} p.{number} ({page['ocr_confidence']:.2f})")
    share = 1.0 - len(empty) / pages if pages else 1.0
    low_share = len(low) / ocr_pages if ocr_pages else 0.0
    return [
        CheckResult(
            check="pages_with_text",
            ok=share >= slo,
            observed=round(share, 4),
            detail=f"{pages - len(empty)} of {pages} pages yielded text (SLO {slo:.0%})" if pages else "no pages yet",
            examples=empty[:_EXAMPLES],
        ),
        CheckResult(
            check="ocr_low_confidence",
            ok=low_share <= 1.0 - slo,
            observed=len(low),
            detail=f"{len(low)} of {ocr_pages} OCR'd pages under confidence {floor:.2f}"
            if ocr_pages
            else "no OCR'd pages",
            examples=low[:_EXAMPLES],
        ),
    ]


def _chunks(snap: _Snapshot) -> list[CheckResult]:
    manifest = MANIFESTS["chunks"]
    dims: dict[str, Counter[int]] = {}
    for c in snap.chunks:
        dims.setdefault(c["model_id"] or "", Counter())[c["dim"] or 0] += 1
    usual = {model: counts.most_common(1)[0][0] for model, counts in dims.items()}
    bad_embedding = [c["chunk_id"] for c in snap.chunks if not c["dim"] or c["dim"] != usual[c["model_id"] or ""]]
    orphans = [
        c["chunk_id"]
        for c in snap.chunks
        if snap.status.get((c["tenant"], c["doc_id"])) in (None, DocumentStatus.deleted.value)
    ]
    gold_ids = {(c["tenant"], c["chunk_id"]) for c in snap.chunks if snap.at_rest(c["tenant"], c["doc_id"])}
    store_ids = {(t, i) for t, i, doc in snap.vectors if snap.at_rest(t, doc)}
    missing = [i for _, i in gold_ids - store_ids]
    extra = [i for _, i in store_ids - gold_ids]
    counts = f"gold {len(gold_ids)}, store {len(store_ids)} at rest"
    counts += f" (all: gold {len(snap.chunks)}, store {len(snap.vectors)})"
    return [
        _freshness(snap, manifest, {DocumentStatus.embedding.value}),
        _result("embeddings_present", bad_embedding, "chunks without a full embedding"),
        _result("chunks_have_document", orphans, "chunks of missing or deleted documents"),
        _result("no_chunk_without_vector", missing, "gold chunks missing from the vector store"),
        _result("no_vector_without_chunk", extra, "vectors without a gold chunk"),
        CheckResult(
            check="vector_count_matches_gold",
            ok=len(gold_ids) == len(store_ids),
            observed=len(store_ids) - len(gold_ids),
            detail="ok: " + counts if len(gold_ids) == len(store_ids) else "counts differ: " + counts,
        ),
    ]


def evaluate(rt: Runtime, *, now: datetime | None = None) -> list[ProductReport]:
    """Run every product's checks (reads silver, gold ids and the store's ids once).

    ``now`` is the clock the freshness SLOs are measured against (default: the current time).
    """
    snap = _Snapshot(rt, now or datetime.now(UTC))
    reports = []
    for name, results in (("documents", _documents(snap)), ("chunks", _chunks(snap))):
        reports.append(ProductReport(product=name, ok=all(r.ok for r in results), checked_at=snap.now, results=results))
    return reports


_LATEST = "products/latest.json"


def run_checks(rt: Runtime) -> list[ProductReport]:
    """Evaluate and store the results as the latest (what ``GET /v1/products`` serves, on any host)."""
    reports = evaluate(rt)
    rt.records.write(_LATEST, json.dumps([r.model_dump(mode="json") for r in reports]))
    return reports


def load_latest(rt: Runtime) -> list[ProductReport] | None:
    """The last stored results, or None when checks never ran on this lake."""
    text = rt.records.read(_LATEST)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return None
    return [ProductReport.model_validate(r) for r in raw]
