"""Worker logging: JSON lines carrying the task id and document id of the task that logged them.

Celery's ``setup_logging`` signal hands logging over to us (the format is DOCLAKE_LOG_FORMAT);
``task_prerun``/``task_postrun`` bind and unbind the task's ids around its run, in the pool process
that runs it, so every line a task logs — ours, the pipeline's, Celery's own "succeeded" line —
carries them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_shutdown

from pipelines.observability import jsonlog
from pipelines.observability.metrics import mark_process_dead
from pipelines.settings import get_settings

__all__: list[str] = []

# Which positional argument holds the document id, per task (tasks take primitive positional args).
_DOC_ID_ARG = {"doclake.extract": 1, "doclake.chunk_embed": 1, "doclake.mirror": 1, "doclake.register": 3}
_tokens: dict[str, contextvars.Token[dict[str, Any] | None]] = {}


class _ReadableIgnore(logging.Filter):
    """Celery logs a task that raised ``Ignore`` with the exception's traceback in the record's data
    (our JSON lines print it whole). A task raises it on purpose, after the runner logged the
    document's failure in one line: keep Celery's line, as one line, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and data.get("description") == "ignored":
            record.data = {k: v for k, v in data.items() if k not in ("traceback", "exc")}
            record.msg = "Task %(name)s[%(id)s] stopped its chain (the document's status records why)"
            record.exc_info = None
        return True


logging.getLogger("celery.app.trace").addFilter(_ReadableIgnore())


@setup_logging.connect
def _setup(loglevel: Any = None, **_: Any) -> None:
    jsonlog.install(get_settings().log_format, level=loglevel or "INFO")


@task_prerun.connect
def _bind(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    name = getattr(task, "name", None)
    fields: dict[str, Any] = {"task_id": task_id, "task": name}
    position = _DOC_ID_ARG.get(name or "")
    args = list(args or [])
    kwargs = dict(kwargs or {})
    if "doc_id" in kwargs:
        fields["doc_id"] = kwargs["doc_id"]
    elif position is not None and len(args) > position:
        fields["doc_id"] = args[position]
    if name in ("doclake.extract", "doclake.chunk_embed", "doclake.mirror") and len(args) == 3:
        fields["tenant"], fields["version"] = args[0], args[2]
    if task_id:
        _tokens[task_id] = jsonlog.bind(**fields)


@task_postrun.connect
def _unbind(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        # A token made in another context (a thread pool) cannot be reset here: nothing of ours to undo.
        with contextlib.suppress(ValueError):
            jsonlog.unbind(token)


@worker_process_shutdown.connect
def _process_gone(pid: int | None = None, **_: Any) -> None:
    import os

    mark_process_dead(pid or os.getpid())
