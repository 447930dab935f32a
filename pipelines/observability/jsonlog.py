"""Structured logs: one JSON object per line, carrying the ids of the work in hand.

Whoever runs a unit of work (a Celery task, a stream micro-batch) binds its ids with
:func:`log_context`; every record logged meanwhile, from any module, gets them as fields. A
contextvar is used (not a thread-local) so it also holds in asyncio code.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["ContextFilter", "JsonFormatter", "bind", "install", "log_context", "unbind"]

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("doclake_log_context", default=None)

# Fields every JSON line has, present as null outside a unit of work, so log queries can rely on them.
_ALWAYS = ("doc_id", "task_id")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add fields to the current context; returns a token for :func:`unbind`."""
    return _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _CONTEXT.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the bound fields onto every record (as attributes), so any formatter can use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _CONTEXT.get() or {}
        for key in _ALWAYS:
            if not hasattr(record, key):
                setattr(record, key, context.get(key))
        for key, value in context.items():
            if not hasattr(record, key) or getattr(record, key) is None:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key in _ALWAYS:
            out[key] = getattr(record, key, None)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def install(fmt: Literal["json", "text"] = "json", *, level: int | str = logging.INFO) -> None:
    """Replace the root logger's handlers with one stderr handler in ``fmt``, with the context filter."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [doc=%(doc_id)s task=%(task_id)s]: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
