"""Reindex: rebuild chunks and vectors for a new model or chunker (blue-green), or in place.

* Same model and chunker as the active index: the documents in scope are re-chunked into the active
  index in place (vectors come from gold, so nothing is re-embedded unless the text changed).
* Another model or chunker: a ``building`` index is filled next to the active one — its own gold
  table and vector table — while search keeps answering from the active index. When every live
  document is in it, a catch-up pass takes the documents that changed meanwhile, then one commit to
  ``meta.indexes`` switches every process to it, and a last catch-up pass takes what changed during
  the switch. The previous index is kept (``retired``) until ``drop_old``.
* ``vectors_only``: rebuild the active index's vector store from gold, embedding nothing.

With ``gate`` (an eval set in ``meta.eval_sets``), a blue-green switch is quality-gated: once the
new index has caught up, both indexes answer the set, and the switch is refused — the new index
stays ``building``, the figures in the report's ``gate`` — when the new nDCG@10 is more than
``max_drop`` below the active one's; ``force`` switches anyway.

Resumable: the building index's id is derived from its (model, chunker), so running the same
command again finds it and skips every document whose current version it already holds.
Vectors are reused wherever the same model already embedded the same text (the index's own gold,
and the active index's gold when the model is unchanged).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipelines.contracts.documents import ChunkerConfig, DocumentStatus
from pipelines.contracts.evals import EVAL_SET_NAME, EvalSet
from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.contracts.search import SearchMode
from pipelines.errors import InvalidInput, StaleVersion
from pipelines.evaluation.gate import GateReport, quality_gate
from pipelines.ingest.mirror import mirror_documents
from pipelines.ingest.plan import plan_rows
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.evals import get_eval_set
from pipelines.lakehouse.indexes import IndexSpec, IndexState, activate_index, index_id_for, put_index
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.maintenance import clear_table
from pipelines.lakehouse.schemas import DOCUMENTS, TableSpec
from pipelines.lakehouse.writer import delete_chunks, follow_index, replace_chunks
from pipelines.ops.progress import Progress
from pipelines.ops.reconcile import ReconcileParams, reconcile
from pipelines.runtime import Runtime
from pipelines.settings import backend_model_id
from pipelines.vectorstore.maintenance import drop_store
from pipelines.vectorstore.mirror import remove_documents

__all__ = ["ReindexParams", "ReindexReport", "drop_index", "reindex"]

log = logging.getLogger(__name__)

_LIVE = (DocumentStatus.indexed.value, DocumentStatus.embedding.value)
_CATCH_UP_PASSES = 3


class ReindexParams(BaseModel):
    model_config = {"protected_namespaces": ()}

    tenant: str | None = Field(default=None, description="Only this tenant.")
    doc_ids: list[str] | None = Field(default=None, description="Only these documents (with a tenant).")
    since: datetime | None = Field(default=None, description="Only documents changed at or after this time.")
    model_path: str | None = Field(default=None, description="Local folder of another sentence-transformers model.")
    model_id: str | None = Field(default=None, description="Id of that model (recorded on gold rows).")
    embed_backend: Literal["torch", "onnx", "onnx-int8"] | None = Field(
        default=None, description="New embedding backend (ONNX int8 vectors differ from torch ones: a new index)."
    )
    chunk_max_tokens: int | None = Field(default=None, ge=16, le=8192, description="New chunk size in tokens.")
    chunk_overlap_tokens: int | None = Field(default=None, ge=0, description="New overlap in tokens.")
    embed_context: bool | None = Field(
        default=None,
        description=(
            "Embed chunks with their title and heading path (true) or alone (false); default: as the active index."
        ),
    )
    vectors_only: bool = Field(default=False, description="Rebuild the vector store from gold; embed nothing.")
    switch: bool = Field(default=True, description="Switch to the new index once it holds every document.")
    drop_old: bool = Field(default=False, description="Drop retired indexes (gold table and vectors) at the end.")
    engine: Literal["local", "spark"] = Field(
        default="local",
        description=(
            "local: delta-rs and this process's model; spark: chunk and embed on Spark executors"
            " (new indexes only: an in-place rebuild races live writers and runs locally)."
        ),
    )
    gate: str | None = Field(
        default=None,
        pattern=EVAL_SET_NAME,
        description=(
            "Eval set (meta.eval_sets) that gates the switch: refused when the new index's nDCG@10 is more than"
            " max_drop below the active one's; the new index then stays building."
        ),
    )
    gate_tenant: str | None = Field(
        default=None, description="Tenant of the gate's eval set (default: tenant, else the default tenant)."
    )
    gate_mode: SearchMode = Field(default="dense", description="Search mode the gate's queries run in.")
    max_drop: float = Field(
        default=0.005,
        ge=-1.0,
        le=1.0,
        description="Largest nDCG@10 drop the gate allows (negative: the new index must be that much better).",
    )
    force: bool = Field(
        default=False, description="Switch even when the gate refuses (its figures are still recorded)."
    )


class ReindexReport(BaseModel):
    mode: Literal["in_place", "blue_green", "vectors_only"]
    index_id: str = Field(description="The index that was built or rebuilt.")
    previous_index_id: str | None = Field(default=None, description="The index active before a switch.")
    switched: bool = False
    documents: int = Field(default=0, description="Documents (re)built.")
    skipped: int = Field(default=0, description="Documents the index already held at their current version.")
    removed: int = Field(default=0, description="Documents removed from the index (deleted meanwhile).")
    chunks: int = 0
    embedded: int = Field(default=0, description="Chunks embedded (the rest reused stored vectors).")
    reused: int = 0
    vectors: int = Field(default=0, description="Vectors written to the store.")
    remaining: int = Field(default=0, description="Live documents the new index still lacks (scoped runs).")
    gate: GateReport | None = Field(
        default=None, description="The quality gate's figures, when a gated switch was decided (passed or not)."
    )
    dropped: list[str] = Field(default_factory=list, description="Indexes dropped.")


def _scope_where(params: ReindexParams, statuses: tuple[str, ...] = _LIVE) -> str:
    parts = [f"status IN ({', '.join(sql_quote(s) for s in statuses)})"]
    if params.tenant:
        parts.append(f"tenant = {sql_quote(params.tenant)}")
    if params.doc_ids:
        parts.append(f"doc_id IN ({', '.join(sql_quote(d) for d in params.doc_ids)})")
    if params.since:
        parts.append(f"updated_at >= to_timestamp_micros({int(params.since.timestamp() * 1e6)})")
    return " AND ".join(parts)


def _scoped(params: ReindexParams) -> bool:
    return bool(params.tenant or params.doc_ids or params.since)


def _target(rt: Runtime, active: IndexSpec, params: ReindexParams) -> IndexSpec:
    """The index this run builds: the active one, or a (possibly half-built) index of the new config."""
    chunker = ChunkerConfig(
        max_tokens=params.chunk_max_tokens or active.chunker.max_tokens,
        overlap_tokens=(
            params.chunk_overlap_tokens if params.chunk_overlap_tokens is not None else active.chunker.overlap_tokens
        ),
        break_on_headings=active.chunker.break_on_headings,
        embed_context=active.chunker.embed_context if params.embed_context is None else params.embed_context,
    )
    if chunker.overlap_tokens >= chunker.max_tokens // 2:
        raise InvalidInput("chunk overlap must be under half the chunk size")
    model_path = params.model_path or active.model_path
    if params.model_path and not Path(params.model_path).is_dir():
        raise InvalidInput(f"model folder {params.model_path} does not exist (models load offline from a folder)")
    if params.model_path and not params.model_id:
        raise InvalidInput("a new model_path needs a model_id (the id recorded on its gold rows)")
    backend = params.embed_backend or active.embed_backend
    model_id = backend_model_id(params.model_id or active.model_id.split("+", 1)[0], backend)
    wanted = IndexSpec(
        index_id=index_id_for(model_id, backend, chunker),
        model_id=model_id,
        model_path=model_path,
        embed_backend=backend,
        chunker=chunker,
    )
    if wanted.same_build(active):
        return active
    for existing in rt.indexes():
        if existing.same_build(wanted):
            return existing  # resume a half-built index, or switch back to a retired one (base too)
    put_index(rt.lake, wanted)
    return wanted


def reindex(rt: Runtime, params: ReindexParams, progress: Progress | None = None) -> ReindexReport:
    """Rebuild the documents in scope; see the module docstring for the three modes."""
    progress = progress or Progress()
    if params.doc_ids and not params.tenant:
        raise InvalidInput("doc_ids need a tenant")
    active = rt.index(fresh=True)
    if params.vectors_only:
        changes = (params.model_path, params.model_id, params.embed_backend, params.chunk_max_tokens)
        if any(changes) or params.chunk_overlap_tokens is not None or params.embed_context is not None:
            raise InvalidInput("vectors_only rebuilds the store from gold: it takes no model or chunker options")
        if params.gate:
            raise InvalidInput("vectors_only switches nothing: a gate applies to a blue-green reindex")
        report = _vectors_only(rt, active, params, progress)
    else:
        golden = _gate_set(rt, params)  # before any work: an unknown set must not cost a whole build
        target = _target(rt, active, params)
        if target.index_id == active.index_id:
            if params.engine == "spark":
                raise InvalidInput("the spark engine builds a new index; rebuild the active one with engine=local")
            report = ReindexReport(mode="in_place", index_id=active.index_id)
            _build(rt, target, params, report, progress, force=True)
        else:
            report = ReindexReport(mode="blue_green", index_id=target.index_id, previous_index_id=active.index_id)
            _build(rt, target, params, report, progress, force=False)
            if not _scoped(params):
                _remove_dead(rt, target, report)
            report.remaining = len(_behind(rt, target, ReindexParams()))
            if params.switch and report.remaining == 0:
                _switch(rt, target, report, progress, params, golden)
    if params.drop_old:
        for index in rt.indexes():
            if index.state == IndexState.retired:
                drop_index(rt, index)
                report.dropped.append(index.index_id)
    progress.finish()
    log.info("reindex %s", report.model_dump_json())
    return report


def _gate_tenant(params: ReindexParams) -> str:
    return params.gate_tenant or params.tenant or DEFAULT_TENANT


def _gate_set(rt: Runtime, params: ReindexParams) -> EvalSet | None:
    return get_eval_set(rt.lake, _gate_tenant(params), params.gate) if params.gate else None


def _live_rows(rt: Runtime, params: ReindexParams) -> list[dict[str, Any]]:
    columns = ["tenant", "doc_id", "version", "status", "chunks"]
    rows: list[dict[str, Any]] = rt.lake.read(DOCUMENTS, _scope_where(params), columns=columns).to_pylist()
    return rows


def _held_versions(rt: Runtime, gold: TableSpec, tenant: str | None) -> dict[tuple[str, str], set[int]]:
    where = f"tenant = {sql_quote(tenant)}" if tenant else None
    held: dict[tuple[str, str], set[int]] = {}
    for r in rt.lake.read(gold, where, columns=["tenant", "doc_id", "doc_version"]).to_pylist():
        held.setdefault((r["tenant"], r["doc_id"]), set()).add(r["doc_version"])
    return held


def _behind(rt: Runtime, index: IndexSpec, params: ReindexParams) -> list[dict[str, Any]]:
    """Live documents in scope whose current version the index does not hold yet."""
    held = _held_versions(rt, index.gold, params.tenant)
    return [
        r
        for r in _live_rows(rt, params)
        if held.get((r["tenant"], r["doc_id"])) != {r["version"]}
        # A document without text has no chunks in any index: nothing to hold.
        and not (r["status"] == DocumentStatus.indexed and r["chunks"] == 0)
    ]


def _build(
    rt: Runtime, index: IndexSpec, params: ReindexParams, report: ReindexReport, progress: Progress, *, force: bool
) -> None:
    rows = _live_rows(rt, params) if force else _behind(rt, index, params)
    if not force:
        report.skipped += len(_live_rows(rt, params)) - len(rows)
    progress.stage("building" if not force else "rebuilding", total=len(rows), unit="documents")
    if params.engine == "spark":
        from pipelines.ops.reindex_spark import spark_build

        built = spark_build(rt, index, rows)
        report.documents += built.documents
        report.chunks += built.chunks
        report.embedded += built.embedded
        report.reused += built.reused
        progress.advance(len(rows), chunks=built.chunks, embedded=built.embedded)
        # The vectors come from gold through the operators' own repair path.
        mirrored = reconcile(rt, ReconcileParams(repair=True, index_id=index.index_id, tenant=params.tenant), progress)
        report.vectors += mirrored.missing + mirrored.mismatched
        return
    for r in rows:
        _build_one(rt, index, r["tenant"], r["doc_id"], report, progress)


def _build_one(
    rt: Runtime, index: IndexSpec, tenant: str, doc_id: str, report: ReindexReport, progress: Progress
) -> None:
    row = get_document(rt.lake, tenant, doc_id, with_text=True)
    if row is None or row["status"] not in _LIVE:
        progress.advance(1)
        return
    # Vectors made by the same model are reused from every index that holds them.
    cache_from = tuple(i.gold for i in rt.indexes() if i.model_id == index.model_id and i.index_id != index.index_id)
    plan = plan_rows(rt, tenant, [row], index, cache_from=cache_from)[doc_id]
    with rt.doc_lock(tenant, doc_id):
        current = get_document(rt.lake, tenant, doc_id)
        if current is None or current["version"] != row["version"] or current["status"] not in _LIVE:
            progress.advance(1)  # changed while we embedded: the catch-up pass takes it
            return
        replace_chunks(rt.lake, index.gold, [(tenant, doc_id)], plan.rows)
        if current["status"] == DocumentStatus.indexed:
            # An `embedding` document is mirrored by its own pending step.
            metadata = json.loads(row["metadata_json"] or "{}")
            report.vectors += mirror_documents(rt, index, tenant, {doc_id: metadata})[doc_id]
    report.documents += 1
    report.chunks += len(plan.rows)
    report.embedded += plan.embedded
    report.reused += plan.reused
    progress.advance(1, chunks=len(plan.rows), embedded=plan.embedded)


def _remove_dead(rt: Runtime, index: IndexSpec, report: ReindexReport) -> None:
    """Drop documents from the index that are no longer live (deleted while it was built)."""
    live = {(r["tenant"], r["doc_id"]) for r in _live_rows(rt, ReindexParams())}
    for tenant, doc_id in _held_versions(rt, index.gold, None):
        if (tenant, doc_id) not in live:
            with rt.doc_lock(tenant, doc_id):
                doc = get_document(rt.lake, tenant, doc_id)
                if doc is None or doc["status"] not in _LIVE:
                    remove_documents([rt.vectors_for(index)], tenant, [doc_id])
                    delete_chunks(rt.lake, index.gold, [(tenant, doc_id)])
                    report.removed += 1


def _catch_up(rt: Runtime, index: IndexSpec, report: ReindexReport, progress: Progress, stage: str) -> int:
    behind = _behind(rt, index, ReindexParams())
    progress.stage(stage, total=len(behind), unit="documents")
    for r in behind:
        try:
            _build_one(rt, index, r["tenant"], r["doc_id"], report, progress)
        except StaleVersion:
            continue
    _remove_dead(rt, index, report)
    return len(behind)


def _switch(
    rt: Runtime,
    target: IndexSpec,
    report: ReindexReport,
    progress: Progress,
    params: ReindexParams,
    golden: EvalSet | None,
) -> None:
    for _ in range(_CATCH_UP_PASSES):
        if _catch_up(rt, target, report, progress, "catching up") == 0:
            break
    if golden is not None:
        gate = quality_gate(
            rt,
            golden,
            active=rt.index(fresh=True),
            candidate=target,
            tenant=_gate_tenant(params),
            mode=params.gate_mode,
            max_drop=params.max_drop,
            progress=progress,
        )
        report.gate = gate
        if not gate.passed and not params.force:
            log.warning(
                "quality gate refused index %s: nDCG@10 %.4f vs %.4f of %s on %s (max drop %s); it stays %s",
                target.index_id,
                gate.new_ndcg_at_10,
                gate.active_ndcg_at_10,
                gate.active_index_id,
                gate.eval_set,
                gate.max_drop,
                target.state.value,
            )
            return
        gate.forced = not gate.passed
    activate_index(rt.lake, target.index_id)
    rt.index(fresh=True)
    report.switched = True
    # Steps that read the old index before the switch may have written it since: take them too.
    _catch_up(rt, target, report, progress, "after switch")
    follow_index(rt.lake, target.gold, model_id=target.model_id, chunker_id=target.chunker.config_id)


def _vectors_only(rt: Runtime, index: IndexSpec, params: ReindexParams, progress: Progress) -> ReindexReport:
    report = ReindexReport(mode="vectors_only", index_id=index.index_id)
    where = _scope_where(params, (DocumentStatus.indexed.value, DocumentStatus.failed.value))
    docs = rt.lake.read(DOCUMENTS, where, columns=["tenant", "doc_id", "metadata_json"]).to_pylist()
    progress.stage("mirroring", total=len(docs), unit="documents")
    for d in docs:
        with rt.doc_lock(d["tenant"], d["doc_id"]):
            metadata = json.loads(d["metadata_json"] or "{}")
            n = mirror_documents(rt, index, d["tenant"], {d["doc_id"]: metadata})[d["doc_id"]]
        report.documents += 1
        report.vectors += n
        progress.advance(1, vectors=n)
    if not _scoped(params) or (params.tenant and not params.doc_ids and not params.since):
        # Vectors of documents that no longer exist: only a whole-store (or whole-tenant) run may judge.
        report.removed = reconcile(rt, ReconcileParams(repair=True, tenant=params.tenant), progress).stale
    return report


def drop_index(rt: Runtime, index: IndexSpec) -> None:
    """Remove a non-active index: its vectors, its gold table, and mark it dropped."""
    if index.state == IndexState.active:
        raise InvalidInput(f"index {index.index_id} is active: switch to another before dropping it")
    if index.index_id == "base":
        # The base gold table is gold.chunks, which the tables of a lake always include: empty it.
        clear_table(rt.lake, index.gold)
    else:
        rt.lake.drop(index.gold)
    drop_store(rt.vectors_for(index))
    put_index(rt.lake, index.model_copy(update={"state": IndexState.dropped}))
