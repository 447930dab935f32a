"""``doclake products``: the data products' manifests, and their checks evaluated on the live tables."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipelines.settings import get_settings

__all__ = ["products"]

products = typer.Typer(help="Data products (documents, chunks): manifests, checks and SLOs.", no_args_is_help=True)


@products.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Evaluate every check and freshness SLO against the live tables; exit 1 on any breach."""
    from pipelines.products.checks import run_checks
    from pipelines.runtime import Runtime

    # Reads the lake and the vector store directly: works whether or not the service is running.
    reports = run_checks(Runtime.from_settings(get_settings()))
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
    else:
        for report in reports:
            for r in report.results:
                mark = "ok    " if r.ok else "BREACH"
                examples = f" e.g. {', '.join(r.examples)}" if r.examples else ""
                typer.echo(f"{mark} {report.product}.{r.check}: {r.detail} (observed {r.observed}){examples}")
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)


@products.command()
def show() -> None:
    """Print the manifests (owner, schema, freshness SLO, checks) as JSON."""
    from pipelines.products.manifests import MANIFESTS

    typer.echo(json.dumps({name: m.model_dump(mode="json") for name, m in MANIFESTS.items()}, indent=2))
