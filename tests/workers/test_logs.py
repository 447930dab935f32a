"""Worker log lines are JSON and carry the task id and document id of the task that logged them."""

from __future__ import annotations

import io
import json
import logging

from celery.signals import task_postrun, task_prerun

import workers.logs  # noqa: F401  (connects the signal handlers)
from pipelines.observability import jsonlog
from workers.tasks import chunk_embed


def _capture(fmt: str = "json") -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(jsonlog.ContextFilter())
    handler.setFormatter(jsonlog.JsonFormatter() if fmt == "json" else logging.Formatter("%(doc_id)s %(message)s"))
    return stream, handler


def test_every_line_inside_a_task_has_its_ids() -> None:
    stream, handler = _capture()
    log = logging.getLogger("pipelines.ingest.test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        task = chunk_embed
        task_prerun.send(sender=task, task_id="t-1", task=task, args=["default", "handbook", 3], kwargs={})
        log.info("chunked %d chunks", 12)
        log.warning("slow", extra={"elapsed_s": 2.5})
        task_postrun.send(sender=task, task_id="t-1", task=task, args=[], kwargs={})
        log.info("idle")
    finally:
        log.removeHandler(handler)
    first, second, idle = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "chunked 12 chunks" and first["level"] == "INFO"
    assert (first["doc_id"], first["task_id"], first["version"], first["task"]) == (
        "handbook",
        "t-1",
        3,
        "doclake.chunk_embed",
    )
    assert second["elapsed_s"] == 2.5 and second["doc_id"] == "handbook"
    assert idle["doc_id"] is None and idle["task_id"] is None  # fields are always present


def test_text_format_and_nested_contexts() -> None:
    stream, handler = _capture("text")
    log = logging.getLogger("doclake.test.text")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with jsonlog.log_context(doc_id="outer"):
            with jsonlog.log_context(doc_id="inner"):
                log.info("a")
            log.info("b")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["inner a", "outer b"]


def test_an_ignored_task_is_one_line_without_a_traceback() -> None:
    from celery import Celery
    from celery.exceptions import Ignore

    app = Celery("logs-test", set_as_current=False)

    @app.task(name="doclake.test_ignored")  # type: ignore[untyped-decorator]
    def stops() -> None:
        raise Ignore()

    stream, handler = _capture()
    trace_log = logging.getLogger("celery.app.trace")
    trace_log.addHandler(handler)
    level = trace_log.level
    trace_log.setLevel(logging.INFO)
    try:
        stops.apply()
    finally:
        trace_log.removeHandler(handler)
        trace_log.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    line = json.loads(lines[0])
    assert "stopped its chain" in line["message"] and "doclake.test_ignored" in line["message"]
    assert "Traceback" not in lines[0] and "traceback" not in line["data"]
