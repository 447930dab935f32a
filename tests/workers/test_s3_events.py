"""S3 notification shapes → ObjectEvent → planned work, and the authenticated webhook route."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.errors import InvalidInput
from pipelines.objectstore.notifications import PlannedAction, doc_id_for_object, parse_notification, plan_action
from pipelines.settings import Settings
from workers.s3events import EventDispatcher

# Recorded from moto's server (S3 → SQS, S3 → SNS → SQS, S3 → EventBridge → SQS) for one PUT.
S3_RECORDS = (
    '{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", '
    '"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "docs-bucket"}, '
    '"object": {"key": "raw%2Fin+data%2Ffile+1.txt", "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592"}}}]}'
)
SNS_ENVELOPE = json.dumps({"Type": "Notification", "MessageId": "b5b6", "Message": S3_RECORDS})
EVENTBRIDGE = json.dumps(
    {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": "docs-bucket"},
            "object": {
                "key": "raw/in data/file 1.txt",
                "size": 5,
                "eTag": "5d41402abc4b2a76b9719d911017c592",
                "version-id": "null",
                "sequencer": "617f08299329d189",
            },
            "reason": "ObjectCreated",
        },
    }
)
TEST_EVENT = '{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "docs-bucket"}'
# The shape MinIO's webhook target POSTs (documented format; MinIO itself cannot be built or run here).
MINIO_WEBHOOK = {
    "EventName": "s3:ObjectCreated:CompleteMultipartUpload",
    "Key": "docs-bucket/raw/reports/Q3 report.pdf",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventName": "s3:ObjectCreated:CompleteMultipartUpload",
            "s3": {
                "bucket": {"name": "docs-bucket", "arn": "arn:aws:s3:::docs-bucket"},
                "object": {
                    "key": "raw%2Freports%2FQ3+report.pdf",
                    "size": 123,
                    "eTag": "a1b2c3-2",
                    "contentType": "application/pdf",
                    "sequencer": "17A8B4B2F2D4E7C1",
                },
            },
        }
    ],
}
MINIO_REMOVED = {
    "EventName": "s3:ObjectRemoved:Delete",
    "Records": [
        {
            "eventName": "s3:ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "docs-bucket"}, "object": {"key": "raw%2Freports%2FQ3+report.pdf"}},
        }
    ],
}


@pytest.mark.parametrize("body", [S3_RECORDS, SNS_ENVELOPE, EVENTBRIDGE], ids=["sqs", "sns", "eventbridge"])
def test_every_delivery_shape_gives_the_same_event(body: str) -> None:
    (event,) = parse_notification(body)
    assert (event.kind, event.bucket, event.key) == ("created", "docs-bucket", "raw/in data/file 1.txt")
    assert event.dedup_key == "created|docs-bucket|raw/in data/file 1.txt|5d41402abc4b2a76b9719d911017c592"


def test_test_events_and_other_types_yield_nothing() -> None:
    assert parse_notification(TEST_EVENT) == []
    assert parse_notification(json.dumps({"Type": "Notification", "Message": TEST_EVENT})) == []
    tags = json.loads(EVENTBRIDGE) | {"detail-type": "Object Tags Added"}
    assert parse_notification(tags) == []


def test_garbage_is_rejected_with_a_reason() -> None:
    for body in ("not json", "[1]", '{"hello": 1}', '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}'):
        with pytest.raises(InvalidInput):
            parse_notification(body)


def test_plan_registers_watched_objects_and_ignores_our_own_keys() -> None:
    (created,) = parse_notification(MINIO_WEBHOOK)
    assert created.key == "raw/reports/Q3 report.pdf"
    planned = plan_action(created, watch_prefix="raw/")
    assert planned == PlannedAction(
        action="register",
        doc_id=doc_id_for_object("docs-bucket", "raw/reports/Q3 report.pdf"),
        uri="s3://docs-bucket/raw/reports/Q3 report.pdf",
        filename="Q3 report.pdf",
    )
    (removed,) = parse_notification(MINIO_REMOVED)
    assert plan_action(removed, watch_prefix="raw/") == planned.model_copy(update={"action": "delete"})
    assert plan_action(created, watch_prefix="incoming/") is None
    ours = created.model_copy(update={"key": "raw/default/d0123456789abcdef01234567/v000002-0123456789abcdef"})
    assert plan_action(ours, watch_prefix="raw/") is None  # an API upload, already registered


def test_dispatcher_collapses_repeated_deliveries() -> None:
    sent: list[tuple[PlannedAction, str]] = []
    dispatcher = EventDispatcher(Settings(), send=lambda p, t: sent.append((p, t)))
    events = [*parse_notification(S3_RECORDS), *parse_notification(SNS_ENVELOPE), *parse_notification(EVENTBRIDGE)]
    assert dispatcher.dispatch(events) == 1
    assert dispatcher.dispatch(parse_notification(S3_RECORDS)) == 0
    assert [p.action for p, _ in sent] == ["register"]


@pytest.fixture()
def webhook(settings: Settings, embedder: Embedder) -> Iterator[tuple[TestClient, list[PlannedAction]]]:
    from pydantic import SecretStr

    settings.webhook_secret = SecretStr("s3cret")
    sent: list[PlannedAction] = []
    with TestClient(create_app(settings, enqueue=lambda *a: None)) as client:
        client.app.state.s3_dispatcher = EventDispatcher(settings, send=lambda p, t: sent.append(p))  # type: ignore[attr-defined]
        yield client, sent


def test_webhook_requires_the_shared_secret(webhook: tuple[TestClient, list[PlannedAction]]) -> None:
    client, sent = webhook
    assert client.post("/v1/events/s3", json=MINIO_WEBHOOK).status_code == 401
    wrong = client.post("/v1/events/s3", json=MINIO_WEBHOOK, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and sent == []
    ok = client.post("/v1/events/s3", json=MINIO_WEBHOOK, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json() == {"events": 1, "dispatched": 1}
    assert [p.filename for p in sent] == ["Q3 report.pdf"]
    bad = client.post("/v1/events/s3", json={"nope": 1}, headers={"Authorization": "Bearer s3cret"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_webhook_is_off_without_a_secret(settings: Settings, embedder: Embedder) -> None:
    with TestClient(create_app(settings, enqueue=lambda *a: None)) as client:
        assert client.post("/v1/events/s3", json=MINIO_WEBHOOK).status_code == 404
