"""The housekeeping service loop and its broker side: a stuck document's chain is sent again."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import get_document
from pipelines.ops.housekeeping import HousekeepingReport
from pipelines.runtime import Runtime
from tests.steps import register_one, step_one
from workers import dispatch
from workers.celery_app import make_celery
from workers.sweeper import housekeep_every


def test_the_service_ticks_until_stopped_and_resumes_a_stuck_document_where_it_stopped(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "celery_app", make_celery(runtime.settings))
    reg = register_one(runtime, b"# Tides\n\nSpring tides follow the new moon.", filename="t.md", doc_id="tides")
    assert step_one(runtime, "extract", "default", "tides", reg.version)  # then its chunk_embed message was lost
    row = get_document(runtime.lake, "default", "tides")
    assert row is not None and row["status"] == DocumentStatus.embedding

    reports: list[HousekeepingReport] = []
    stopping = threading.Event()

    def on_report(report: HousekeepingReport) -> None:
        reports.append(report)
        if len(reports) == 2:
            stopping.set()

    housekeep_every(runtime, 0.01, stopping, older_than_s=0, on_report=on_report)
    assert len(reports) == 2 and reports[0].requeued == 1 and reports[0].vector_stores == ["base"]
    assert set(reports[0].seconds) == {"sweep", "delta", "vectors"}  # what each part of a tick cost
    queue = runtime.settings.run_dir / "broker" / "queue"
    assert not list(queue.glob("*.extract.msg"))  # extraction is done: not redone
    messages = [json.loads(p.read_text()) for p in queue.glob("*.embed.msg")]
    assert len(messages) == sum(r.requeued for r in reports)
    for m in messages:
        assert m["headers"]["task"] == "doclake.chunk_embed"
        assert json.loads(base64.b64decode(m["body"]))[0] == ["default", "tides", reg.version]
