"""On the distributed profile (stream source Kafka), the API's own change events reach the topic the
stream reads: a PATCH recorded only in bronze was never applied there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.updates import UpdateOp
from pipelines.runtime import Runtime
from pipelines.stream.changes import delete_event, ensure_topic, parse_event, patch_metadata
from tests.steps import process_one, register_one

if TYPE_CHECKING:
    from tests.integration.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration


def test_patch_and_delete_events_are_sent_to_kafka(runtime: Runtime, kafka_broker: KafkaBroker) -> None:
    from kafka import KafkaConsumer

    topic = "documents_updates_api"
    settings = runtime.settings.model_copy(
        update={"stream_source": "kafka", "kafka_bootstrap_servers": kafka_broker.bootstrap, "kafka_topic": topic}
    )
    rt = Runtime.from_settings(settings)
    registered = register_one(rt, b"The tide tables are printed every spring.", filename="tides.txt")
    process_one(rt, "default", registered.doc_id, registered.version)

    patched = patch_metadata(rt, "default", registered.doc_id, {"harbour": "west"})
    deleted = delete_event(rt, "default", registered.doc_id, patched.version + 1)

    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=20_000
    )
    try:
        received = []
        for message in consumer:
            received.append(message)
            if len(received) == 2:
                break
    finally:
        consumer.close()
    events = [parse_event(m.value).event for m in received]
    assert [e.event_id if e else None for e in events] == [patched.event_id, deleted.event_id]
    assert events[0] is not None and events[0].op == UpdateOp.patch_metadata
    assert events[0].metadata == {"harbour": "west"} and events[0].version == patched.version
    assert {m.key for m in received} == {registered.doc_id.encode()}


def test_the_stream_topic_is_created_once(runtime: Runtime, kafka_broker: KafkaBroker) -> None:
    from kafka.admin import KafkaAdminClient

    settings = runtime.settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_broker.bootstrap, "kafka_topic": "documents_updates_fresh"}
    )
    ensure_topic(settings)
    ensure_topic(settings)  # already there: nothing to do, no error
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert "documents_updates_fresh" in admin.list_topics()
    finally:
        admin.close()
