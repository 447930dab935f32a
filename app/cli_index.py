"""``doclake reindex``, ``reconcile`` and ``indexes``: the index commands, run in the foreground.

They open the lake and the vector store directly (the service may keep running: every step is
guarded by versions and document locks). The same functions run as API jobs under /v1/jobs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from pipelines.settings import get_settings

__all__ = ["indexes", "reconcile", "reindex"]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def reindex(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    doc_id: Annotated[list[str] | None, typer.Option("--doc-id", help="Only this document (repeatable).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only documents changed since (ISO time).")] = None,
    model_path: Annotated[str | None, typer.Option(help="Folder of another sentence-transformers model.")] = None,
    model_id: Annotated[str | None, typer.Option(help="Id of that model, recorded on gold rows.")] = None,
    embed_backend: Annotated[str | None, typer.Option(help="New embedding backend: torch, onnx or onnx-int8.")] = None,
    chunk_max_tokens: Annotated[int | None, typer.Option(help="New chunk size in tokens.")] = None,
    chunk_overlap_tokens: Annotated[int | None, typer.Option(help="New chunk overlap in tokens.")] = None,
    embed_context: Annotated[
        bool | None,
        typer.Option(
            "--embed-context/--no-embed-context",
            help="Embed chunks with their title and heading path, or alone (default: as the active index).",
        ),
    ] = None,
    vectors_only: Annotated[bool, typer.Option(help="Rebuild the vector store from gold; embed nothing.")] = False,
    switch: Annotated[bool, typer.Option(help="Switch to the new index when it is complete.")] = True,
    drop_old: Annotated[bool, typer.Option(help="Drop retired indexes at the end.")] = False,
    engine: Annotated[str, typer.Option(help="local (this process) or spark (executors of DOCLAKE_SPARK_MASTER).")] = (
        "local"
    ),
    gate: Annotated[
        str | None,
        typer.Option(
            metavar="EVAL_SET",
            help="Eval set (doclake eval import) gating the switch: refused if the new nDCG@10 drops more than"
            " --max-drop below the active index's.",
        ),
    ] = None,
    gate_tenant: Annotated[str | None, typer.Option(help="Tenant of the gate's eval set (default: --tenant).")] = None,
    gate_mode: Annotated[str, typer.Option(help="Search mode of the gate: dense, keyword or hybrid.")] = "dense",
    max_drop: Annotated[
        float, typer.Option(help="Largest nDCG@10 drop the gate allows (negative: require an improvement).")
    ] = 0.005,
    force: Annotated[bool, typer.Option(help="Switch even when the gate refuses (figures still recorded).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rebuild chunks and vectors: in place, blue-green to a new model/chunk size, or --vectors-only.

    Exit 1 when --gate refused the switch (the new index stays building), 2 on an error.
    """
    from pydantic import ValidationError

    from pipelines.errors import DocLakeError
    from pipelines.ops.progress import Progress, TerminalBar
    from pipelines.ops.reindex import ReindexParams
    from pipelines.ops.reindex import reindex as run
    from pipelines.runtime import Runtime

    try:
        params = ReindexParams(
            tenant=tenant,
            doc_ids=doc_id or None,
            since=since,
            model_path=model_path,
            model_id=model_id,
            embed_backend=embed_backend,  # type: ignore[arg-type]  # validated by the model
            chunk_max_tokens=chunk_max_tokens,
            chunk_overlap_tokens=chunk_overlap_tokens,
            embed_context=embed_context,
            vectors_only=vectors_only,
            switch=switch,
            drop_old=drop_old,
            engine=engine,  # type: ignore[arg-type]  # validated by the model
            gate=gate,
            gate_tenant=gate_tenant,
            gate_mode=gate_mode,  # type: ignore[arg-type]  # validated by the model
            max_drop=max_drop,
            force=force,
        )
        report = run(Runtime.from_settings(get_settings()), params, Progress(None if as_json else TerminalBar()))
    except DocLakeError as e:
        raise _fail(e.describe()) from e
    except ValidationError as e:
        raise _fail(str(e)) from e
    refused = report.gate is not None and not report.gate.passed and not report.switched
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        raise typer.Exit(1 if refused else 0)
    typer.echo(
        f"{report.mode} index {report.index_id}: {report.documents} documents rebuilt, {report.skipped} already"
        f" built, {report.chunks} chunks ({report.embedded} embedded, {report.reused} reused),"
        f" {report.vectors} vectors written, {report.removed} removed"
    )
    if report.gate is not None:
        g = report.gate
        typer.echo(
            f"gate {g.eval_set} ({g.queries} queries, {g.mode}): nDCG@10 new {g.new_ndcg_at_10:.4f} vs active"
            f" {g.active_ndcg_at_10:.4f} ({g.active_index_id}), Recall@10 {g.new_recall_at_10:.4f} vs"
            f" {g.active_recall_at_10:.4f}; max drop {g.max_drop}: {'passed' if g.passed else 'REFUSED'}"
            + (" (forced)" if g.forced else "")
        )
    if report.switched:
        typer.echo(f"switched: {report.previous_index_id} -> {report.index_id}")
    elif refused and report.gate is not None:
        g = report.gate
        typer.echo(
            f"not switched: the quality gate refused {report.index_id} (nDCG@10 {g.new_ndcg_at_10:.4f} on"
            f" {g.eval_set} is more than {g.max_drop} below {g.active_ndcg_at_10:.4f} of {g.active_index_id});"
            f" {g.active_index_id} stays active and {report.index_id} is not switched to (a new index stays"
            " building); --force switches anyway",
            err=True,
        )
    elif report.mode == "blue_green":
        typer.echo(f"not switched: {report.remaining} live documents still missing from {report.index_id}")
    if report.dropped:
        typer.echo(f"dropped: {', '.join(report.dropped)}")
    if refused:
        raise typer.Exit(1)


def reconcile(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    repair: Annotated[bool, typer.Option(help="Repair the drift found (--no-repair only reports).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare the vector store with gold and repair it; exit 0 if it was clean, 1 if drift was found."""
    from pipelines.errors import DocLakeError
    from pipelines.ops.progress import Progress, TerminalBar
    from pipelines.ops.reconcile import ReconcileParams
    from pipelines.ops.reconcile import reconcile as run
    from pipelines.runtime import Runtime

    try:
        params = ReconcileParams(tenant=tenant, repair=repair)
        report = run(Runtime.from_settings(get_settings()), params, Progress(None if as_json else TerminalBar()))
    except DocLakeError as e:
        raise _fail(e.describe()) from e
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        state = "clean" if report.clean else ("repaired" if report.repaired else "DRIFT")
        typer.echo(
            f"{state}: index {report.index_id}, {report.documents} documents, {report.gold_chunks} gold chunks,"
            f" {report.vectors} vectors; missing {report.missing}, stale {report.stale},"
            f" mismatched {report.mismatched}" + (f" (e.g. {', '.join(report.examples)})" if report.examples else "")
        )
    raise typer.Exit(0 if report.clean else 1)


def indexes(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the search indexes (model, chunker, state)."""
    from pipelines.runtime import Runtime

    specs = Runtime.from_settings(get_settings()).indexes()
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in specs], indent=2))
        return
    for s in specs:
        typer.echo(
            f"{s.index_id:<12} {s.state.value:<9} model={s.model_id} backend={s.embed_backend}"
            f" chunk={s.chunker.max_tokens}/{s.chunker.overlap_tokens} created={s.created_at:%Y-%m-%d %H:%M}"
        )
