"""``doclake optimize``, ``vacuum``, ``history``, ``restore`` and ``purge``: lake maintenance, in the foreground.

They open the lake directly (the service may keep running: every operation takes the tables'
write locks). The same functions run as API jobs under /v1/jobs. Progress goes to stderr, so
``--json`` output on stdout stays parseable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pipelines.settings import get_settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pipelines.ops.progress import Progress
    from pipelines.runtime import Runtime

__all__ = ["ops"]

ops = typer.Typer(help="Lake maintenance.")

R = TypeVar("R")

_JSON = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
_TABLES = Annotated[
    list[str] | None,
    typer.Option(
        "--table", help="Table (silver, gold, raw, updates, quarantine, indexes, or a full name); repeatable."
    ),
]


def _run(as_json: bool, call: Callable[[Runtime, Progress], R]) -> R:
    """Open the runtime and run ``call``; a named error or invalid option ends with one line and exit 2."""
    from pydantic import ValidationError

    from pipelines.errors import DocLakeError
    from pipelines.ops.progress import Progress, TerminalBar
    from pipelines.runtime import Runtime

    try:
        rt = Runtime.from_settings(get_settings())
        return call(rt, Progress(None if as_json else TerminalBar()))
    except DocLakeError as e:
        typer.echo(f"error: {e.describe()}", err=True)
        raise typer.Exit(2) from e
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'options'}: {x['msg']}" for x in e.errors())
        typer.echo(f"error: invalid_input: {problems}", err=True)
        raise typer.Exit(2) from e


def _emit(report: BaseModel, as_json: bool, lines: Callable[[], list[str]]) -> None:
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    for line in lines():
        typer.echo(line)


@ops.command()
def optimize(
    table: _TABLES = None,
    zorder: Annotated[bool, typer.Option(help="Z-ORDER silver and gold by (tenant, doc_id).")] = True,
    engine: Annotated[str, typer.Option(help="spark (OPTIMIZE through Spark) or local (delta-rs, no JVM).")] = "spark",
    vectors: Annotated[bool, typer.Option(help="Also compact the vector stores.")] = True,
    as_json: _JSON = False,
) -> None:
    """Compact small files and Z-ORDER silver and gold by (tenant, doc_id); older versions stay readable."""
    from pipelines.ops.tables import OptimizeParams
    from pipelines.ops.tables import optimize as run

    report = _run(
        as_json,
        lambda rt, p: run(
            rt,
            OptimizeParams.model_validate({"tables": table, "zorder": zorder, "engine": engine, "vectors": vectors}),
            p,
        ),
    )
    _emit(
        report,
        as_json,
        lambda: (
            [
                f"{t.table:<28} {'z-ordered' if t.zordered else 'compacted':<9}"
                f" files {t.files_before} -> {t.files_after}  version {t.version}"
                for t in report.tables
            ]
            + ([f"vector stores compacted: {', '.join(report.vector_stores)}"] if report.vector_stores else [])
        ),
    )


@ops.command()
def vacuum(
    retention_hours: Annotated[float, typer.Option(help="Keep the files of versions younger than this.")] = 168.0,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a retention under 168 h: ends time travel / as_of search before it.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the files that would go.")] = False,
    table: _TABLES = None,
    as_json: _JSON = False,
) -> None:
    """Remove data files that no version younger than the retention needs."""
    from pipelines.ops.tables import VacuumParams
    from pipelines.ops.tables import vacuum as run

    report = _run(
        as_json,
        lambda rt, p: run(
            rt, VacuumParams(retention_hours=retention_hours, force=force, dry_run=dry_run, tables=table), p
        ),
    )
    verb = "would remove" if report.dry_run else "removed"
    _emit(report, as_json, lambda: [f"{name:<28} {verb} {n} files" for name, n in report.files.items()])


@ops.command()
def history(
    table: Annotated[
        list[str] | None, typer.Argument(help="Tables (default: silver and the active index's gold).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Versions per table.")] = 20,
    as_json: _JSON = False,
) -> None:
    """The newest versions of tables: time, operation, parameters (what restore can go back to)."""
    from pipelines.ops.tables import TableHistory
    from pipelines.ops.tables import history as run

    names = table or ["silver", "gold"]
    result: list[TableHistory] = []

    def call(rt: Runtime, _: Progress) -> TableHistory:
        for name in names:
            result.append(run(rt, name, limit=limit))
        return result[0]

    _run(True, call)
    if as_json:
        typer.echo(json.dumps([h.model_dump(mode="json") for h in result], indent=2))
        return
    for h in result:
        typer.echo(f"{h.table} (version {h.version})")
        for e in h.entries:
            when = e.timestamp.isoformat(timespec="seconds") if e.timestamp else "-"
            params = ", ".join(f"{k}={v}" for k, v in e.parameters.items())
            typer.echo(f"  {e.version:>6}  {when}  {e.operation:<16} {params}"[:200])


@ops.command()
def restore(
    table: Annotated[
        str, typer.Argument(help="Table to restore, or 'all' (silver and every gold; needs --timestamp).")
    ],
    version: Annotated[int | None, typer.Option(help="Version to restore (see doclake history).")] = None,
    timestamp: Annotated[datetime | None, typer.Option(help="Restore the version current at this UTC time.")] = None,
    reconcile: Annotated[bool, typer.Option(help="Re-mirror the vector stores from the restored gold.")] = True,
    as_json: _JSON = False,
) -> None:
    """Bring a table back to an older version (a new commit), then re-mirror the vector stores.

    Silver and gold belong together: restore 'all' at a timestamp unless you know they agree.
    """
    from pipelines.ops.tables import RestoreParams
    from pipelines.ops.tables import restore as run

    report = _run(
        as_json,
        lambda rt, p: run(rt, RestoreParams(table=table, version=version, timestamp=timestamp, reconcile=reconcile), p),
    )

    def lines() -> list[str]:
        out = [
            f"{t.table:<28} v{t.previous_version} -> restored {t.restored_to} as v{t.version}" for t in report.tables
        ]
        for r in report.reconciled:
            out.append(
                f"reconciled index {r['index_id']}: missing {r['missing']}, stale {r['stale']},"
                f" mismatched {r['mismatched']}, {r['repaired_documents']} documents re-mirrored"
            )
        return out

    _emit(report, as_json, lines)


@ops.command()
def purge(
    tenant: Annotated[str, typer.Option(help="Tenant whose documents are purged.")],
    doc_id: Annotated[
        list[str] | None, typer.Option("--doc-id", help="Document to purge (repeatable); none purges the tenant.")
    ] = None,
    all_documents: Annotated[
        bool, typer.Option("--all-documents", help="Confirm purging every document of the tenant.")
    ] = False,
    vacuum: Annotated[
        bool, typer.Option(help="Vacuum with retention 0 after (needed to really erase; ends time travel).")
    ] = True,
    as_json: _JSON = False,
) -> None:
    """Right to be forgotten: remove rows, vectors and raw objects of documents or a whole tenant.

    Then the touched tables are vacuumed with retention 0 and their old log entries dropped: the data
    is gone from disk, and time travel (as_of search, restore) to versions before the purge ends.
    """
    from pipelines.ops.purge import PurgeParams
    from pipelines.ops.purge import purge as run

    if not doc_id and not all_documents:
        typer.echo("error: give --doc-id, or --all-documents to purge the whole tenant", err=True)
        raise typer.Exit(2)
    report = _run(as_json, lambda rt, p: run(rt, PurgeParams(tenant=tenant, doc_ids=doc_id or None, vacuum=vacuum), p))

    def lines() -> list[str]:
        rows: dict[str, Any] = {k: v for k, v in report.rows_removed.items() if v}
        out = [
            f"purged {len(report.doc_ids)} documents of tenant {report.tenant}"
            + (" (whole tenant)" if report.whole_tenant else ""),
            f"rows removed: {json.dumps(rows)}",
            f"vectors removed: {report.vectors_removed}; raw objects removed: {report.objects_removed}"
            + (f" ({report.objects_missing} already missing)" if report.objects_missing else ""),
        ]
        if report.files_vacuumed:
            out.append(f"files vacuumed: {json.dumps(report.files_vacuumed)}")
            out.append(f"time travel before this purge ended for: {', '.join(report.time_travel_ended)}")
        return out

    _emit(report, as_json, lines)
