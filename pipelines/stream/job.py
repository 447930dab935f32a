"""The update stream: a Structured Streaming query over change events, applied by ``process_batch``.

``--source delta`` reads ``bronze.document_updates`` (embedded profile: the API and producers append
to it); ``--source kafka`` reads the ``documents_updates`` topic (distributed profile). The same
micro-batch logic runs for both; the checkpoint (one per source) records which events are done.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipelines.contracts.ids import sha256_hex
from pipelines.lakehouse.schemas import UPDATES
from pipelines.lakehouse.spark import get_spark
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.storage.location import spark_uri
from pipelines.stream.batch import process_batch

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

__all__ = ["Source", "run_stream", "source_frame", "start_stream"]

log = logging.getLogger(__name__)

Source = Literal["delta", "kafka"]


def source_frame(spark: SparkSession, rt: Runtime, source: Source) -> DataFrame:
    """The raw event stream as one string column ``payload`` (JSON), whatever the source."""
    from pyspark.sql import functions as sf

    settings = rt.settings
    if source == "delta":
        events = (
            spark.readStream.format("delta")
            .option("maxFilesPerTrigger", settings.stream_max_events)
            # Compaction (dataChange=false) is ignored by the source; a rewrite of old events must be too.
            .option("skipChangeCommits", "true")
            .load(spark_uri(rt.lake.uri(UPDATES)))
        )
        fields = [c for c in UPDATES.schema.names if c != "received_at"]
        return events.select(sf.to_json(sf.struct(*fields)).alias("payload"))
    events = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", settings.stream_max_events)
        .option("failOnDataLoss", "false")
        .load()
    )
    return events.select(sf.col("value").cast("string").alias("payload"))


def start_stream(
    spark: SparkSession,
    rt: Runtime,
    *,
    source: Source,
    checkpoint: Path | None = None,
    trigger_s: float | None = None,
    driver_max_events: int | None = None,
) -> StreamingQuery:
    """Start the query; returns at once. The checkpoint folder defaults to ``run/stream/<source>``.

    ``driver_max_events`` overrides the setting of the same name (see ``process_batch``).
    """
    checkpoint = (checkpoint or rt.settings.stream_dir / source).resolve()
    # The transaction id of every write must survive restarts: derive it from the checkpoint.
    app_id = f"doclake-stream-{source}-{sha256_hex(str(checkpoint))[:12]}"

    def handle(df: DataFrame, batch_id: int) -> None:
        process_batch(rt, df, batch_id, source=source, app_id=app_id, driver_max_events=driver_max_events)

    return (
        source_frame(spark, rt, source)
        .writeStream.queryName(f"doclake_updates_{source}")
        .foreachBatch(handle)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime=f"{trigger_s or rt.settings.stream_trigger_s} seconds")
        .start()
    )


def run_stream(settings: Settings, *, source: Source | None = None) -> None:
    """Run the stream in the foreground until SIGINT/SIGTERM (``doclake stream``)."""
    rt = Runtime.from_settings(settings)
    if (source or settings.stream_source) == "kafka":
        from pipelines.stream.changes import ensure_topic

        ensure_topic(settings)
    spark = get_spark(settings, app_name="doclake-stream")
    query = start_stream(spark, rt, source=source or settings.stream_source)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("update stream running: source=%s master=%s", source or settings.stream_source, settings.spark_master)
    try:
        while not stopping.wait(1.0):
            if not query.isActive:
                break
    finally:
        if stopping.is_set():
            # Stopping cancels the query's job group: the JVM would warn about it at every level below ERROR.
            spark.sparkContext.setLogLevel("ERROR")
        if query.isActive:
            query.stop()
        spark.stop()
        log.info("update stream stopped")
    error = query.exception()
    if error is not None and not stopping.is_set():
        raise RuntimeError(f"update stream failed: {error}")
