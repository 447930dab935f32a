"""``doclake eval``: run a golden set's queries against an index and score them (nDCG@10, Recall@10).

The queries go through ``pipelines.serve.search.search`` — the code ``/v1/search`` runs — on a view
of the runtime pinned to the index under test (``Runtime.pinned``): the active index, a ``building``
one before its switch, or a retired one; with ``as_of``, the exact search over that index's gold at
a Delta version or time. Each query asks for ``top_k`` chunks; a document's chunks collapse to its
id where the best one ranks, and the documents are scored against the set's judgements. A result
is recorded per (set content, index, gold version, snapshot, mode, top_k) in ``meta.eval_results``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from pipelines.contracts.evals import EVAL_SET_NAME, EvalResult, EvalSet
from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.contracts.search import SearchMode, SearchQuery
from pipelines.errors import InvalidInput
from pipelines.evaluation.beir import load_beir
from pipelines.evaluation.metrics import best_chunk_ranking, mean_metrics
from pipelines.lakehouse.documents import now_utc
from pipelines.lakehouse.evals import get_eval_set, put_eval_result
from pipelines.lakehouse.indexes import IndexSpec, IndexState
from pipelines.ops.progress import Progress
from pipelines.runtime import Runtime
from pipelines.serve.search import default_mode, search

__all__ = ["EvalParams", "evaluate", "evaluate_index", "load_eval_set", "resolve_index"]

log = logging.getLogger(__name__)

_K = 10


class EvalParams(BaseModel):
    eval_set: str | None = Field(
        default=None,
        pattern=EVAL_SET_NAME,
        description=(
            "An eval set stored in meta.eval_sets; with --qrels/--queries, the name the result is recorded under"
            " (default: the qrels file's stem)."
        ),
    )
    qrels: Path | None = Field(default=None, description="BEIR qrels TSV (query-id, corpus-id, score) to evaluate.")
    queries: Path | None = Field(default=None, description="BEIR queries JSONL ({_id, text}) that goes with --qrels.")
    tenant: str = Field(default=DEFAULT_TENANT, description="Tenant whose documents are searched and whose set it is.")
    index_id: str | None = Field(
        default=None, description="Index to evaluate: the active one by default, or a building or retired one by id."
    )
    as_of: int | datetime | None = Field(
        default=None, description="Evaluate the index's gold as it was then (a Delta version or ISO time); dense only."
    )
    mode: SearchMode | None = Field(
        default=None,
        description=(
            "Search mode of the queries: dense, keyword or hybrid; default the search API's default for the"
            " index's store (hybrid on LanceDB, dense on Pinecone; dense with as_of)."
        ),
    )
    top_k: int = Field(
        default=100, ge=_K, le=100, description="Chunks asked per query; they collapse to documents (best chunk first)."
    )
    record: bool = Field(default=True, description="Store the result in meta.eval_results.")

    @model_validator(mode="after")
    def _one_source(self) -> EvalParams:
        files = (self.qrels is not None, self.queries is not None)
        if any(files) and not all(files):
            raise ValueError("qrels and queries files go together")
        if not all(files) and self.eval_set is None:
            raise ValueError("name a stored eval set, or give qrels and queries files")
        return self


def resolve_index(rt: Runtime, index_id: str | None) -> IndexSpec:
    """The index to evaluate: ``index_id`` (active, building or retired) or the active one.

    Raises:
        InvalidInput: no such index, or it was dropped.
    """
    if index_id is None:
        return rt.index(fresh=True)
    for index in rt.indexes():
        if index.index_id == index_id:
            return index
    known = ", ".join(f"{i.index_id} ({i.state.value})" for i in rt.indexes())
    raise InvalidInput(f"no index {index_id!r} to evaluate (dropped indexes have no tables); indexes: {known}")


def _gold_version(rt: Runtime, index: IndexSpec, as_of: int | datetime | None) -> int:
    if as_of is None:
        return rt.lake.table(index.gold).version()
    try:
        dt = rt.lake.snapshot(index.gold)
        dt.load_as_version(as_of)
        return dt.version()
    except Exception as e:  # delta-rs: no such version, a time before the table, vacuumed files
        raise InvalidInput(f"gold of index {index.index_id} cannot be read as of {as_of}: {e}") from e


def evaluate_index(
    rt: Runtime,
    golden: EvalSet,
    index: IndexSpec,
    *,
    tenant: str = DEFAULT_TENANT,
    mode: SearchMode | None = None,
    as_of: int | datetime | None = None,
    top_k: int = 100,
    progress: Progress | None = None,
) -> EvalResult:
    """Score ``index`` on ``golden``: every query through search, documents ranked by their best chunk.

    Nothing is recorded (``evaluate`` and the reindex gate record what they run).

    Raises:
        InvalidInput: ``as_of`` with a mode other than dense, or a version/time gold cannot be read at.
    """
    if as_of is not None and mode not in (None, "dense"):
        raise InvalidInput("as_of search is exact dense search over a gold snapshot: use mode dense")
    if index.state == IndexState.dropped:
        raise InvalidInput(f"index {index.index_id} was dropped: nothing to evaluate")
    if mode is None:  # what a search without a mode runs on this index, so the score is the one users get
        mode = "dense" if as_of is not None else default_mode(rt.vectors_for(index))
    progress = progress or Progress()
    gold_version = _gold_version(rt, index, as_of)
    view = rt.pinned(index)  # every query answers from this index, whatever a switch does meanwhile
    progress.stage(f"evaluating {index.index_id}", total=len(golden.queries), unit="queries")
    started = time.perf_counter()
    runs: dict[str, list[str]] = {}
    for query_id, text in golden.queries.items():
        hits = search(view, SearchQuery(query=text, top_k=top_k, mode=mode, as_of=as_of), tenant=tenant)
        runs[query_id] = best_chunk_ranking([h.doc_id for h in hits])
        progress.advance(1)
    scores = mean_metrics(runs, golden.qrels, k=_K)
    result = EvalResult(
        tenant=tenant,
        eval_set=golden.name,
        set_sha256=golden.sha256,
        index_id=index.index_id,
        gold_version=gold_version,
        snapshot="live" if as_of is None else "as_of",
        as_of=None if as_of is None else (str(as_of) if isinstance(as_of, int) else as_of.isoformat()),
        mode=mode,
        top_k=top_k,
        queries=len(golden.queries),
        ndcg_at_10=scores[f"ndcg@{_K}"],
        recall_at_10=scores[f"recall@{_K}"],
        duration_s=round(time.perf_counter() - started, 3),
        evaluated_at=now_utc(),
    )
    log.info("eval %s", result.model_dump_json())
    return result


def load_eval_set(rt: Runtime, params: EvalParams) -> EvalSet:
    """The set ``params`` name: from files, or stored in meta.eval_sets.

    Raises:
        InvalidEvalSet: malformed files or an empty set.
        EvalSetNotFound: no stored set of that name.
    """
    if params.qrels is not None and params.queries is not None:
        return load_beir(params.qrels, params.queries, name=params.eval_set)
    assert params.eval_set is not None  # checked by EvalParams
    return get_eval_set(rt.lake, params.tenant, params.eval_set)


def evaluate(rt: Runtime, params: EvalParams, progress: Progress | None = None) -> EvalResult:
    """Run an eval set against an index and record the result (see the module docstring).

    Raises:
        InvalidEvalSet, EvalSetNotFound: see ``load_eval_set``.
        InvalidInput: an unknown index, or an ``as_of`` gold cannot be read at.
    """
    progress = progress or Progress()
    golden = load_eval_set(rt, params)
    index = resolve_index(rt, params.index_id)
    result = evaluate_index(
        rt,
        golden,
        index,
        tenant=params.tenant,
        mode=params.mode,
        as_of=params.as_of,
        top_k=params.top_k,
        progress=progress,
    )
    if params.record:
        put_eval_result(rt.lake, result)
    progress.finish()
    return result
