"""Operator jobs: the CLI's long commands (reindex, reconcile, optimize, vacuum, restore, purge) as
background jobs of the API, with status and progress under ``/v1/jobs``.

A job runs the same pipeline function the CLI runs, in a thread of the API process; its record is a
JSON record in the runtime's shared records (files under ``run/jobs`` beside a local lake, objects
beside a lake on S3) replaced whole on every progress change, so any process on any host (the CLI's
``doclake jobs``, another API) can read it. A job whose process died is reported as
``failed`` with ``interrupted`` once its heartbeat is older than a minute (the commands themselves
are resumable: run it again).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from pipelines.errors import DocLakeError, DocumentNotFound, InvalidInput
from pipelines.lakehouse.documents import now_utc
from pipelines.ops.progress import Progress, ProgressState
from pipelines.storage.records import Records

__all__ = ["OPERATIONS", "JobKind", "JobRecord", "JobRequest", "JobStatus", "JobStore", "resolve", "start_job"]

log = logging.getLogger(__name__)

# kind -> (params model, function(rt, params, progress) -> report model), as "module:attribute" so this
# registry imports nothing heavy (Spark, torch) until a job of that kind runs.
OPERATIONS: dict[str, tuple[str, str]] = {
    "reindex": ("pipelines.ops.reindex:ReindexParams", "pipelines.ops.reindex:reindex"),
    "reconcile": ("pipelines.ops.reconcile:ReconcileParams", "pipelines.ops.reconcile:reconcile"),
    "optimize": ("pipelines.ops.tables:OptimizeParams", "pipelines.ops.tables:optimize"),
    "vacuum": ("pipelines.ops.tables:VacuumParams", "pipelines.ops.tables:vacuum"),
    "restore": ("pipelines.ops.tables:RestoreParams", "pipelines.ops.tables:restore"),
    "purge": ("pipelines.ops.purge:PurgeParams", "pipelines.ops.purge:purge"),
}

_HEARTBEAT_STALE_S = 60.0


class JobKind(StrEnum):
    reindex = "reindex"
    reconcile = "reconcile"
    optimize = "optimize"
    vacuum = "vacuum"
    restore = "restore"
    purge = "purge"


class JobStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class JobRequest(BaseModel):
    kind: JobKind = Field(description="Which operator command to run.")
    params: dict[str, Any] = Field(default_factory=dict, description="The command's options (see its CLI help).")

    model_config = {"json_schema_extra": {"examples": [{"kind": "reindex", "params": {"vectors_only": True}}]}}


class JobRecord(BaseModel):
    job_id: str
    kind: JobKind
    params: dict[str, Any]
    status: JobStatus
    progress: ProgressState = Field(default_factory=ProgressState)
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    heartbeat_at: datetime


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve(kind: str, params: dict[str, Any]) -> tuple[BaseModel, Callable[..., BaseModel]]:
    """The validated params and the function of a job kind.

    Raises:
        InvalidInput: unknown kind or invalid params.
    """
    if kind not in OPERATIONS:
        raise InvalidInput(f"unknown job kind {kind!r}; one of {sorted(OPERATIONS)}")
    params_ref, fn_ref = OPERATIONS[kind]
    try:
        model: BaseModel = _load(params_ref).model_validate(params)
    except ValidationError as e:
        raise InvalidInput(f"invalid {kind} params: {e.errors(include_url=False)}") from e
    return model, _load(fn_ref)


class JobStore:
    """Job records as JSON under ``jobs/`` of the shared records (each replaced whole)."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def save(self, record: JobRecord) -> None:
        self.records.write(f"jobs/{record.job_id}.json", record.model_dump_json())

    def get(self, job_id: str) -> JobRecord:
        text = self.records.read(f"jobs/{job_id}.json") if job_id.isalnum() else None
        if text is None:
            raise DocumentNotFound(f"no job {job_id}")
        return self._fresh(JobRecord.model_validate_json(text))

    def list(self, limit: int = 50) -> list[JobRecord]:
        records = []
        for key in self.records.keys("jobs"):
            if not key.endswith(".json"):
                continue
            try:
                text = self.records.read(key)
                if text is not None:
                    records.append(self._fresh(JobRecord.model_validate_json(text)))
            except (ValidationError, OSError, json.JSONDecodeError):
                continue  # a record being replaced right now; the next listing has it
        return sorted(records, key=lambda r: r.created_at, reverse=True)[:limit]

    @staticmethod
    def _fresh(record: JobRecord) -> JobRecord:
        silent_s = (now_utc() - record.heartbeat_at).total_seconds()
        if record.status == JobStatus.running and silent_s > _HEARTBEAT_STALE_S:
            died = "interrupted: the job's process died; run it again (it resumes)"
            return record.model_copy(update={"status": JobStatus.failed, "error": died})
        return record


def start_job(rt: Any, store: JobStore, request: JobRequest) -> JobRecord:
    """Validate a job and run it in a background thread; returns its first record at once."""
    params, fn = resolve(request.kind.value, request.params)
    now = now_utc()
    record = JobRecord(
        job_id=uuid.uuid4().hex,
        kind=request.kind,
        params=params.model_dump(mode="json"),
        status=JobStatus.running,
        created_at=now,
        heartbeat_at=now,
    )
    store.save(record)
    lock = threading.Lock()

    def on_update(state: ProgressState) -> None:
        with lock:
            record.progress = state
            record.heartbeat_at = now_utc()
            store.save(record)

    def run() -> None:
        progress = Progress(on_update)
        try:
            report = fn(rt, params, progress)
            with lock:
                record.result = report.model_dump(mode="json")
                record.status = JobStatus.succeeded
        except DocLakeError as e:
            with lock:
                record.status, record.error = JobStatus.failed, e.describe()
        except Exception as e:  # a job must end with a status, whatever went wrong
            log.exception("job %s (%s) crashed", record.job_id, record.kind)
            with lock:
                record.status, record.error = JobStatus.failed, f"internal_error: {type(e).__name__}: {e}"
        with lock:
            record.progress = progress.snapshot()
            record.finished_at = record.heartbeat_at = now_utc()
            store.save(record)

    def heartbeat() -> None:
        while record.finished_at is None:
            time.sleep(10)
            with lock:
                if record.finished_at is None:
                    record.heartbeat_at = now_utc()
                    store.save(record)

    threading.Thread(target=run, name=f"job-{record.job_id[:8]}", daemon=True).start()
    threading.Thread(target=heartbeat, name=f"job-hb-{record.job_id[:8]}", daemon=True).start()
    return record.model_copy(deep=True)
