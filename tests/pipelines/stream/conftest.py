"""Fixtures of the stream tests: a real Kafka broker (the SparkSession is the root conftest's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.kafka_broker import KafkaBroker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real single-node Kafka (KRaft) on 127.0.0.1, started from the Maven Central jars."""
    from tests.integration.kafka_broker import start_broker

    broker = start_broker(Path(tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.stop()
