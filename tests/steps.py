"""One-document shorthands over the many-document step API, for tests that follow a single document."""

from __future__ import annotations

import json
import uuid

from pipelines.contracts.acl import KEEP, AclArg
from pipelines.contracts.documents import RegisterResult
from pipelines.contracts.ids import DEFAULT_TENANT, MetadataValue
from pipelines.ingest.register import RegisterItem, register_objects
from pipelines.ingest.runner import StepOutcome, process_inline, run_step, step_named
from pipelines.ingest.step import StepResult
from pipelines.lakehouse.schemas import UPDATES
from pipelines.runtime import Runtime
from pipelines.stream.batch import BatchResult, apply_payloads


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
    acl: AclArg = KEEP,
) -> RegisterResult:
    item = RegisterItem(data=data, filename=filename, doc_id=doc_id, metadata=metadata, stored_uri=stored_uri, acl=acl)
    return register_objects(rt, [item], tenant=tenant, source=source)[0]


def apply_updates(rt: Runtime, *, tenant: str | None = None) -> BatchResult:
    """Apply the change events of bronze.document_updates (PATCH, producers) as the update stream would, with
    its own micro-batch on the driver engine and no Spark. Every event is replayed each time: events silver
    already holds are skipped by the version guard, as after a stream restart."""
    rows = rt.lake.read(UPDATES, f"tenant = '{tenant}'" if tenant else None).to_pylist()
    # The Delta source's payload: the row as JSON without null columns (Spark's to_json leaves them out).
    payloads = [
        json.dumps(
            {k: (v.isoformat() if k == "ts" else v) for k, v in r.items() if v is not None and k != "received_at"}
        )
        for r in sorted(rows, key=lambda r: (r["version"], r["received_at"]))
    ]
    return apply_payloads(rt, payloads, 0, source="delta", app_id=uuid.uuid4().hex)


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
