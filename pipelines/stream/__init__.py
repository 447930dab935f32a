"""The update stream (Spark Structured Streaming over change events).

Only the Spark-free parts are imported here; ``pipelines.stream.job`` and ``pipelines.stream.batch``
import pyspark lazily, so the API can write events without a JVM.
"""

from pipelines.stream.events import ParsedEvent, append_updates, delete_event, parse_event, patch_metadata

__all__ = ["ParsedEvent", "append_updates", "delete_event", "parse_event", "patch_metadata"]
