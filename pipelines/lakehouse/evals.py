"""The eval tables: golden sets in ``meta.eval_sets`` and their scores in ``meta.eval_results``.

Both are written by MERGEs on their keys, so a re-import or a re-run replaces its rows instead of
adding copies. An import replaces the whole set in one commit (rows it no longer has are deleted),
so a reader never sees half of an old set mixed with half of a new one.
"""

from __future__ import annotations

from typing import Any

from pipelines.contracts.evals import EvalResult, EvalSet, EvalSetSummary, check_eval_set_name
from pipelines.errors import EvalSetNotFound
from pipelines.lakehouse.documents import now_utc, rows_table
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import EVAL_RESULTS, EVAL_SETS

__all__ = ["get_eval_set", "has_eval_set", "list_eval_results", "list_eval_sets", "put_eval_result", "put_eval_set"]


def _set_where(tenant: str, name: str, *, alias: str = "") -> str:
    return f"{alias}tenant = {sql_quote(tenant)} AND {alias}eval_set = {sql_quote(name)}"


def put_eval_set(lake: Lake, tenant: str, golden: EvalSet) -> int:
    """Make ``meta.eval_sets`` hold exactly ``golden`` under its name for ``tenant`` (one commit);
    returns the number of judgements stored."""
    stamp = now_utc()
    digest = golden.sha256
    rows = [
        {
            "tenant": tenant,
            "eval_set": golden.name,
            "query_id": query_id,
            "doc_id": doc_id,
            "relevance": relevance,
            "query": golden.queries[query_id],
            "set_sha256": digest,
            "imported_at": stamp,
        }
        for query_id, relevant in golden.qrels.items()
        for doc_id, relevance in relevant.items()
    ]
    stale = _set_where(tenant, golden.name, alias="t.")
    lake.merge(
        EVAL_SETS,
        rows_table(EVAL_SETS, rows),
        predicate=EVAL_SETS.merge_on,
        build=lambda m: (
            m.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(predicate=stale)
        ),
    )
    return len(rows)


def get_eval_set(lake: Lake, tenant: str, name: str) -> EvalSet:
    """The stored set ``name`` of ``tenant``.

    Raises:
        InvalidEvalSet: a name no set can have.
        EvalSetNotFound: no such set.
    """
    check_eval_set_name(name)
    rows = lake.read(EVAL_SETS, _set_where(tenant, name), columns=["query_id", "doc_id", "relevance", "query"])
    if rows.num_rows == 0:
        raise EvalSetNotFound(f"no eval set {name!r} for tenant {tenant!r} (import one with `doclake eval import`)")
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for r in rows.to_pylist():
        queries[r["query_id"]] = r["query"] or ""
        qrels.setdefault(r["query_id"], {})[r["doc_id"]] = int(r["relevance"] or 0)
    return EvalSet.of(name, queries, qrels)


def has_eval_set(lake: Lake, tenant: str, name: str) -> bool:
    check_eval_set_name(name)
    return bool(lake.read(EVAL_SETS, _set_where(tenant, name), columns=["query_id"]).num_rows > 0)


def list_eval_sets(lake: Lake, tenant: str) -> list[EvalSetSummary]:
    """The tenant's stored sets, by name."""
    columns = ["eval_set", "query_id", "set_sha256", "imported_at"]
    sets: dict[str, dict[str, Any]] = {}
    for r in lake.read(EVAL_SETS, f"tenant = {sql_quote(tenant)}", columns=columns).to_pylist():
        s = sets.setdefault(r["eval_set"], {"queries": set(), "judgements": 0, "sha": r["set_sha256"], "at": None})
        s["queries"].add(r["query_id"])
        s["judgements"] += 1
        s["at"] = max(filter(None, (s["at"], r["imported_at"])), default=None)
    return [
        EvalSetSummary(
            name=name, queries=len(s["queries"]), judgements=s["judgements"], set_sha256=s["sha"], imported_at=s["at"]
        )
        for name, s in sorted(sets.items())
    ]


def put_eval_result(lake: Lake, result: EvalResult) -> None:
    """Record a result; a rerun of the same (set content, index, gold version, snapshot, mode, top_k) replaces it."""
    lake.merge(
        EVAL_RESULTS,
        rows_table(EVAL_RESULTS, [result.model_dump()]),
        predicate=EVAL_RESULTS.merge_on,
        build=lambda m: m.when_matched_update_all().when_not_matched_insert_all(),
    )


def list_eval_results(
    lake: Lake, tenant: str, *, eval_set: str | None = None, index_id: str | None = None, limit: int = 100
) -> list[EvalResult]:
    """The tenant's results, newest first, optionally of one set and/or one index."""
    where = [f"tenant = {sql_quote(tenant)}"]
    if eval_set is not None:
        where.append(f"eval_set = {sql_quote(check_eval_set_name(eval_set))}")
    if index_id is not None:
        where.append(f"index_id = {sql_quote(index_id)}")
    rows = lake.read(EVAL_RESULTS, " AND ".join(where)).to_pylist()
    results = [EvalResult.model_validate(r) for r in rows]
    return sorted(results, key=lambda r: r.evaluated_at, reverse=True)[:limit]
