"""What every step checks before it acts: the version is current, the status is one it acts on, the lock is held."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import DocLakeError, DocumentNotFound, StaleVersion
from pipelines.ingest.step import StepResult, StepResults
from pipelines.runtime import Runtime

__all__ = ["doc_locks", "triage", "version_error"]


def version_error(row: dict[str, Any] | None, doc_id: str, version: int) -> DocLakeError | None:
    """Why a step for ``version`` may not act on the document's silver ``row`` (None when it may)."""
    if row is None:
        return DocumentNotFound(f"document {doc_id} does not exist", doc_id=doc_id)
    if row["version"] != version:
        return StaleVersion(f"version {version} is not current (current is {row['version']})", doc_id=doc_id)
    return None


def triage(
    rows: dict[str, dict[str, Any]], versions: dict[str, int], acts_on: tuple[DocumentStatus, ...], *, idle: StepResult
) -> tuple[StepResults, dict[str, dict[str, Any]]]:
    """Split a step's documents into the silver rows it acts on (current version, status in
    ``acts_on``) and the results of the others: their version error, or ``idle`` (nothing to do)."""
    results: StepResults = {}
    ready: dict[str, dict[str, Any]] = {}
    for doc_id, version in versions.items():
        row = rows.get(doc_id)
        error = version_error(row, doc_id, version)
        if error is not None:
            results[doc_id] = error
        elif row is not None and row["status"] in acts_on:
            ready[doc_id] = row
        else:
            results[doc_id] = idle
    return results, ready


@contextmanager
def doc_locks(rt: Runtime, tenant: str, doc_ids: Iterable[str]) -> Iterator[None]:
    """Every document's lock, taken in sorted order so that two batches cannot deadlock."""
    with ExitStack() as stack:
        for doc_id in sorted(set(doc_ids)):
            stack.enter_context(rt.doc_lock(tenant, doc_id))
        yield
