"""What dispatch puts on the broker: tasks by name, routed to their queues, chains in step order.

The messages are read back from a real filesystem broker in a temporary folder: the task name, the
queue it was routed to, its arguments, its countdown and the steps that follow it.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.settings import Settings
from workers import dispatch
from workers.celery_app import make_celery


@pytest.fixture()
def queue_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = Settings(data_dir=tmp_path / "data")
    monkeypatch.setattr(dispatch, "celery_app", make_celery(settings))
    return settings.run_dir / "broker" / "queue"


def _sent(queue_dir: Path) -> list[dict[str, Any]]:
    """Each message in send order: its queue, task, args, eta and the chain steps after it."""
    messages = []
    for path in sorted(queue_dir.iterdir(), key=lambda p: int(p.name.partition("_")[0])):
        message = json.loads(path.read_text())
        args, _kwargs, embed = json.loads(base64.b64decode(message["body"]))
        messages.append(
            {
                "queue": path.name.split(".")[1],
                "task": message["headers"]["task"],
                "args": args,
                "eta": message["headers"]["eta"],
                # Celery keeps the remaining steps last-first.
                "then": [(s["task"], s["args"], s["immutable"]) for s in reversed(embed["chain"] or [])],
            }
        )
    return messages


def test_a_document_chain_starts_at_extract_and_resumes_at_chunk_embed(queue_dir: Path) -> None:
    dispatch.enqueue_processing("t1", "doc", 3)
    [message] = _sent(queue_dir)
    assert message == {
        "queue": "extract",
        "task": "doclake.extract",
        "args": ["t1", "doc", 3],
        "eta": None,
        "then": [("doclake.chunk_embed", ["t1", "doc", 3], True)],
    }
    for path in queue_dir.iterdir():
        path.unlink()
    dispatch.enqueue_processing("t1", "doc", 3, from_status=DocumentStatus.embedding, countdown=30)
    [message] = _sent(queue_dir)
    assert (message["queue"], message["task"], message["args"], message["then"]) == (
        "embed",
        "doclake.chunk_embed",
        ["t1", "doc", 3],
        [],
    )
    assert message["eta"] is not None and datetime.fromisoformat(message["eta"]) > datetime.now().astimezone()


def test_a_document_that_needs_ocr_is_extracted_on_the_ocr_queue(queue_dir: Path) -> None:
    dispatch.enqueue_processing("t1", "scan", 2, ocr=True)
    [message] = _sent(queue_dir)
    assert message == {
        "queue": "ocr",
        "task": "doclake.extract_ocr",
        "args": ["t1", "scan", 2],
        "eta": None,
        "then": [("doclake.chunk_embed", ["t1", "scan", 2], True)],
    }


def test_a_mirror_retry_goes_alone_to_the_embed_queue(queue_dir: Path) -> None:
    dispatch.enqueue_mirror("t1", "doc", 3, countdown=2)
    [message] = _sent(queue_dir)
    assert (message["queue"], message["task"], message["args"], message["then"]) == (
        "embed",
        "doclake.mirror",
        ["t1", "doc", 3],
        [],
    )
    assert message["eta"] is not None


def test_a_batch_chain_passes_each_steps_result_on(queue_dir: Path) -> None:
    dispatch.enqueue_batch("t1", {"a": 1, "b": 4})
    [message] = _sent(queue_dir)
    assert message == {
        "queue": "extract",
        "task": "doclake.extract_batch",
        "args": [{"a": 1, "b": 4}, "t1"],
        "eta": None,
        # Not immutable: chunk_embed_batch receives the versions extract_batch finished, then the tenant.
        "then": [("doclake.chunk_embed_batch", ["t1"], False)],
    }


def test_every_task_is_routed_by_its_name_and_every_route_names_a_task() -> None:
    import workers.tasks  # noqa: F401  (registers the tasks)
    from workers.celery_app import celery_app

    registered = {name for name in celery_app.tasks if name.startswith("doclake.")}
    assert set(celery_app.conf.task_routes) == registered
    assert {name: r["queue"] for name, r in celery_app.conf.task_routes.items()} == {
        "doclake.register": "extract",
        "doclake.remove_object": "extract",
        "doclake.extract": "extract",
        "doclake.extract_batch": "extract",
        "doclake.extract_ocr": "ocr",
        "doclake.chunk_embed": "embed",
        "doclake.chunk_embed_batch": "embed",
        "doclake.mirror": "embed",
    }
    assert not celery_app.conf.beat_schedule  # nothing runs celery beat: housekeeping is `doclake sweep`
