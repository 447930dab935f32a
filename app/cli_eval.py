"""``doclake eval``: retrieval quality of an index on a golden set, and the sets and results kept in the lake.

Like ``reindex``, it opens the lake and the vector store directly (the service may keep running).
Errors (an unknown set or index, malformed files, an empty set) end with one line and exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from pipelines.contracts.ids import DEFAULT_TENANT

if TYPE_CHECKING:
    from pipelines.contracts.evals import EvalResult
    from pipelines.runtime import Runtime

__all__ = ["evals"]

evals = typer.Typer(
    help=(
        "Retrieval quality: run a golden set (BEIR qrels + queries, or a set imported into meta.eval_sets) against"
        " an index and record nDCG@10 / Recall@10 in meta.eval_results. Subcommands import and list sets and results."
    ),
    invoke_without_command=True,
)

T = TypeVar("T")

_TENANT = Annotated[str, typer.Option(help="Tenant whose documents are searched and whose eval set it is.")]
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _call(fn: Callable[[Runtime], T]) -> T:
    """``fn`` on the runtime; a named error or invalid option ends with one line and exit 2 (as ``doclake ops``)."""
    from app.cli_ops import _run

    return _run(True, lambda rt, _progress: fn(rt))


def _as_of(value: str | None) -> int | datetime | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        return datetime.fromisoformat(value)
    except ValueError as e:
        typer.echo(f"error: invalid_input: --as-of {value!r} is neither a gold version nor an ISO time", err=True)
        raise typer.Exit(2) from e


@evals.callback()
def run(
    ctx: typer.Context,
    eval_set: Annotated[
        str | None,
        typer.Option(
            "--set", help="Stored eval set to run; with --qrels/--queries, the name the result is recorded under."
        ),
    ] = None,
    qrels: Annotated[Path | None, typer.Option(help="BEIR qrels TSV: query-id, corpus-id (a doc id), score.")] = None,
    queries: Annotated[Path | None, typer.Option(help='BEIR queries JSONL: {"_id", "text"} per line.')] = None,
    tenant: _TENANT = DEFAULT_TENANT,
    index: Annotated[
        str | None, typer.Option("--index", help="Index id to evaluate (default: the active index; building ok).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Gold Delta version (integer) or ISO time of that index; dense only.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="Search mode: dense, keyword or hybrid (default: the search default, hybrid on LanceDB)."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Chunks asked per query (10-100).")] = 100,
    record: Annotated[bool, typer.Option(help="Store the result in meta.eval_results (--no-record: only print).")] = (
        True
    ),
    as_json: _JSON = False,
) -> None:
    """Run a golden set against an index: nDCG@10 and Recall@10, recorded per (index, gold version, set)."""
    if ctx.invoked_subcommand is not None:
        if any(v is not None for v in (eval_set, qrels, queries, index, as_of)):
            typer.echo(
                f"error: the options of `doclake eval` run a set; `{ctx.invoked_subcommand}` takes its own", err=True
            )
            raise typer.Exit(2)
        return
    if eval_set is None and qrels is None and queries is None:
        typer.echo(ctx.get_help())
        typer.echo("\nerror: name a stored set with --set, or give --qrels and --queries", err=True)
        raise typer.Exit(2)
    from pipelines.evaluation.run import EvalParams, evaluate
    from pipelines.ops.progress import Progress, TerminalBar

    when = _as_of(as_of)

    def call(rt: Runtime) -> EvalResult:
        params = EvalParams(
            eval_set=eval_set,
            qrels=qrels,
            queries=queries,
            tenant=tenant,
            index_id=index,
            as_of=when,
            mode=mode,  # type: ignore[arg-type]  # validated by the model
            top_k=top_k,
            record=record,
        )
        return evaluate(rt, params, Progress(None if as_json else TerminalBar()))

    result = _call(call)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    where = f"as of {result.as_of}, " if result.as_of else ""
    typer.echo(
        f"{result.eval_set} on index {result.index_id} ({where}gold v{result.gold_version}, {result.mode}):"
        f" nDCG@10 {result.ndcg_at_10:.4f}, Recall@10 {result.recall_at_10:.4f} over {result.queries} queries"
        f" in {result.duration_s:.1f}s" + ("" if record else " (not recorded)")
    )


@evals.command("import")
def import_set(
    name: Annotated[str, typer.Argument(help="Name of the set (letters, digits, _ . -).")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels TSV: query-id, corpus-id (a doc id), score.")],
    queries: Annotated[Path, typer.Option(help='BEIR queries JSONL: {"_id", "text"} per line.')],
    tenant: _TENANT = DEFAULT_TENANT,
) -> None:
    """Store a BEIR set in meta.eval_sets under NAME (replacing a set of that name)."""
    from pipelines.evaluation.beir import load_beir
    from pipelines.lakehouse.evals import put_eval_set

    def call(rt: Runtime) -> tuple[int, int]:
        golden = load_beir(qrels, queries, name=name)
        return len(golden.queries), put_eval_set(rt.lake, tenant, golden)

    n_queries, n_judgements = _call(call)
    typer.echo(f"imported eval set {name} for tenant {tenant}: {n_queries} queries, {n_judgements} judgements")


@evals.command("sets")
def list_sets(tenant: _TENANT = DEFAULT_TENANT, as_json: _JSON = False) -> None:
    """List the tenant's stored eval sets."""
    from pipelines.lakehouse.evals import list_eval_sets

    sets = _call(lambda rt: list_eval_sets(rt.lake, tenant))
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in sets], indent=2))
        return
    for s in sets:
        at = f"{s.imported_at:%Y-%m-%d %H:%M}" if s.imported_at else "-"
        typer.echo(f"{s.name:<24} {s.queries:>6} queries {s.judgements:>7} judgements  imported {at}")


@evals.command("results")
def list_results(
    eval_set: Annotated[str | None, typer.Option("--set", help="Only this eval set.")] = None,
    index: Annotated[str | None, typer.Option("--index", help="Only this index.")] = None,
    tenant: _TENANT = DEFAULT_TENANT,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: _JSON = False,
) -> None:
    """List recorded results, newest first."""
    from pipelines.lakehouse.evals import list_eval_results

    results = _call(lambda rt: list_eval_results(rt.lake, tenant, eval_set=eval_set, index_id=index, limit=limit))
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
        return
    for r in results:
        snapshot = f"as_of {r.as_of}" if r.as_of else "live"
        typer.echo(
            f"{r.evaluated_at:%Y-%m-%d %H:%M} {r.eval_set:<16} index {r.index_id:<12} gold v{r.gold_version:<5}"
            f" {snapshot:<10} {r.mode:<7} nDCG@10 {r.ndcg_at_10:.4f} Recall@10 {r.recall_at_10:.4f} ({r.queries} q)"
        )
