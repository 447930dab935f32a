"""The update stream on the Kafka source, against a real broker (KRaft) started from the Apache jars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import QUARANTINE
from pipelines.runtime import Runtime
from pipelines.stream.job import start_stream
from tests.pipelines.stream.helpers import assert_exactly_once, event, search_docs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.integration.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration


def test_kafka_events_are_applied_and_invalid_ones_quarantined(
    spark: SparkSession, runtime: Runtime, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    settings = runtime.settings.model_copy(
        update={"kafka_bootstrap_servers": kafka_broker.bootstrap, "kafka_topic": "documents_updates_test"}
    )
    rt = Runtime.from_settings(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    messages = [
        event(
            "lighthouse", "upsert", 1, text="The lighthouse keeper logs ships at night.", metadata={"coast": "north"}
        ),
        event("lighthouse", "patch_metadata", 2, metadata={"coast": "north", "restored": True}),
        event("lighthouse", "upsert", 1, text="A stale duplicate that must not win."),
        event("orchard", "upsert", 1, text="Apple trees are pruned in late winter."),
    ]
    for m in messages:
        producer.send(settings.kafka_topic, key=m.doc_id.encode(), value=m.model_dump_json().encode())
    producer.send(settings.kafka_topic, value=b"{not json")
    producer.send(settings.kafka_topic, value=json.dumps({"event_id": "no-doc", "op": "upsert"}).encode())
    producer.flush(timeout=60)
    producer.close()

    query = start_stream(spark, rt, source="kafka", checkpoint=tmp_path / "checkpoint", trigger_s=0.2)
    try:
        query.processAllAvailable()
    finally:
        query.stop()

    doc = get_document(rt.lake, "default", "lighthouse", with_text=True)
    assert doc is not None and doc["version"] == 2 and doc["status"] == DocumentStatus.indexed
    assert "keeper" in doc["text"] and json.loads(doc["metadata_json"])["restored"] is True
    assert search_docs(rt, "lighthouse keeper ships", restored=True)[0] == "lighthouse"
    assert search_docs(rt, "pruning apple trees")[0] == "orchard"
    assert_exactly_once(rt)
    quarantined = rt.lake.read(QUARANTINE).to_pylist()
    assert len(quarantined) == 2 and all(q["source"] == "stream:kafka" and q["error"] for q in quarantined)
    assert {q["payload"] for q in quarantined} >= {"{not json"}
