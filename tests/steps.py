"""One-document shorthands over the many-document step API, for tests that follow a single document."""

from __future__ import annotations

from pipelines.contracts.documents import RegisterResult
from pipelines.contracts.ids import DEFAULT_TENANT, MetadataValue
from pipelines.ingest.register import RegisterItem, register_objects
from pipelines.ingest.runner import StepOutcome, process_inline, run_step, step_named
from pipelines.ingest.step import StepResult
from pipelines.runtime import Runtime


def register_one(
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
    item = RegisterItem(data=data, filename=filename, doc_id=doc_id, metadata=metadata, stored_uri=stored_uri)
    return register_objects(rt, [item], tenant=tenant, source=source)[0]


def process_one(rt: Runtime, tenant: str, doc_id: str, version: int) -> StepOutcome:
    return process_inline(rt, tenant, {doc_id: version})[doc_id]


def run_named(
    rt: Runtime, step: str, tenant: str, versions: dict[str, int], *, can_retry: bool
) -> dict[str, StepOutcome]:
    return run_step(rt, step_named(step, rt.settings), tenant, versions, can_retry=can_retry)


def run_one(rt: Runtime, step: str, tenant: str, doc_id: str, version: int, *, can_retry: bool) -> StepOutcome:
    return run_named(rt, step, tenant, {doc_id: version}, can_retry=can_retry)[doc_id]


def step_one(rt: Runtime, step: str, tenant: str, doc_id: str, version: int) -> StepResult:
    """The step's result for one document, raising the error it hit (no runner policy applied)."""
    result = step_named(step, rt.settings).run(rt, tenant, {doc_id: version})[doc_id]
    if isinstance(result, Exception):
        raise result
    return result
