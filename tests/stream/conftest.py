"""Fixtures of the stream tests: ONE SparkSession (Delta + Kafka source) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.stream.kafka_broker import KafkaBroker


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """Local[2] Spark with Delta: started once (~10-35 s), shared by every stream and interop test."""
    from pipelines.lakehouse.spark import get_spark

    session = get_spark(Settings(), app_name="doclake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real single-node Kafka (KRaft) on 127.0.0.1, started from the Maven Central jars."""
    from tests.stream.kafka_broker import start_broker

    broker = start_broker(Path(tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.stop()
