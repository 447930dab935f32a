"""S3 event intake: the SQS poller and the dispatcher shared with the webhook route.

Both normalise to ``ObjectEvent`` (pipelines.objectstore.notifications) and enqueue one Celery task per object. The
poller deletes an SQS message only after its events were enqueued, so a crash re-delivers it; the
register step is idempotent on content, so a re-delivered or doubled event is one ingestion.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.errors import InvalidInput
from pipelines.objectstore.notifications import ObjectEvent, PlannedAction, parse_notification, plan_action
from pipelines.settings import Settings

__all__ = ["EventDispatcher", "poll_sqs"]

log = logging.getLogger("doclake.s3events")


Sender = Callable[[PlannedAction, str], None]


def _send_to_celery(planned: PlannedAction, tenant: str) -> None:
    from workers.celery_app import REGISTER, REMOVE_OBJECT, celery_app

    if planned.action == "register":
        celery_app.send_task(REGISTER, args=(planned.uri, planned.filename, tenant, planned.doc_id, None))
    else:
        celery_app.send_task(REMOVE_OBJECT, args=(tenant, planned.doc_id))


class EventDispatcher:
    """Turns object events into Celery tasks, dropping exact repeats it has seen recently."""

    def __init__(self, settings: Settings, *, memory: int = 10_000, send: Sender | None = None) -> None:
        self.settings = settings
        self._send = send or _send_to_celery
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._memory = memory
        self._lock = threading.Lock()

    def _seen_before(self, event: ObjectEvent) -> bool:
        with self._lock:
            return event.dedup_key in self._seen

    def _remember(self, event: ObjectEvent) -> None:
        # Only after the task was sent: an event whose enqueue failed must be retried, not forgotten.
        with self._lock:
            self._seen[event.dedup_key] = None
            if len(self._seen) > self._memory:
                self._seen.popitem(last=False)

    def dispatch(self, events: list[ObjectEvent], *, tenant: str = DEFAULT_TENANT) -> int:
        """Enqueue work for each event; returns how many tasks were sent."""
        sent = 0
        for event in events:
            planned = plan_action(event, watch_prefix=self.settings.s3_watch_prefix)
            if planned is None or self._seen_before(event):
                continue
            self._send(planned, tenant)
            self._remember(event)
            log.info("%s %s (%s)", planned.action, event.uri, planned.doc_id)
            sent += 1
        return sent


def poll_sqs(settings: Settings, stop: threading.Event, *, dispatcher: EventDispatcher | None = None) -> None:
    """Long-poll the queue until ``stop`` is set."""
    import boto3

    if not settings.sqs_queue_url:
        raise InvalidInput("DOCLAKE_SQS_QUEUE_URL is not set")
    sqs: Any = boto3.client("sqs", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    dispatcher = dispatcher or EventDispatcher(settings)
    while not stop.is_set():
        response = sqs.receive_message(QueueUrl=settings.sqs_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            try:
                dispatcher.dispatch(parse_notification(message["Body"]))
            except InvalidInput as e:
                # Not an object event we understand: keep it out of the queue but say so loudly.
                log.error("dropping unparseable SQS message %s: %s", message.get("MessageId"), e)
            sqs.delete_message(QueueUrl=settings.sqs_queue_url, ReceiptHandle=message["ReceiptHandle"])
