"""Prometheus metrics: what the pipeline does (counted where it happens) and what the lake holds.

Two kinds of numbers, two mechanisms:

- **Events** (step durations, chunks embedded vs reused, search latency, stream lag) are observed in
  whichever process does the work — Celery prefork children, the API, the stream driver. They use
  prometheus-client's *multiprocess mode*: each process writes its samples to mmap files under
  ``PROMETHEUS_MULTIPROC_DIR`` and the API's ``/metrics`` sums them. ``doclake up`` points that
  variable at ``<data>/run/metrics`` (wiped at start) for all its children; ``doclake serve`` and
  ``doclake worker`` started alone use the same folder unless the variable is already set. The variable
  must be set before ``prometheus_client`` is imported, which is why the CLI sets it first thing.
  Without it (tests, one process) the metrics live in the process's default registry.
- **State** (documents by status, gold and vector counts, queue depth, last ingestion) is read from
  the Delta tables, the vector store and the broker at scrape time by :class:`LakeCollector`: the lake
  is the truth and is already shared by every process, so no worker has to report it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

__all__ = [
    "CHUNKS",
    "MULTIPROC_ENV",
    "SEARCH_LATENCY",
    "STEP_DURATION",
    "STEP_OUTCOMES",
    "STREAM_LAG",
    "LakeCollector",
    "QueueDepth",
    "mark_process_dead",
    "multiproc_dir",
    "record_stream_lag",
    "render",
    "reset_multiproc_dir",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STEP_DURATION = Histogram(
    "doclake_step_duration_seconds",
    "Wall time of one ingestion step (extract = extraction, chunk_embed = chunking + embedding, mirror).",
    ["step"],
    buckets=_DURATION_BUCKETS,
)
STEP_OUTCOMES = Counter(
    "doclake_step_outcomes_total", "Ingestion steps run, by outcome (done, skipped, retry, failed).", ["step", "state"]
)
CHUNKS = Counter(
    "doclake_chunks_total",
    "Chunks written to gold, by where their vector came from (embedded now, or reused from gold).",
    ["source"],
)
SEARCH_LATENCY = Histogram(
    "doclake_search_latency_seconds",
    "Latency of a query: embed it, ask the vector store, shape the answer.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
STREAM_LAG = Gauge(
    "doclake_stream_lag_seconds",
    "Age of the newest change event the update stream has applied, at its last micro-batch.",
    ["stream"],
    multiprocess_mode="livemax",
)

QueueDepth = Callable[[], dict[str, int]]


def record_stream_lag(seconds: float, *, stream: str = "documents_updates") -> None:
    """The seam for the update stream: call it after each micro-batch with (now - newest event ts)."""
    STREAM_LAG.labels(stream=stream).set(max(0.0, seconds))


def multiproc_dir(run_dir: Path) -> Path:
    return run_dir / "metrics"


def reset_multiproc_dir(run_dir: Path) -> Path:
    """Empty the multiprocess folder (before the first child starts): samples of a previous run go."""
    path = multiproc_dir(run_dir).resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (its counters and histograms stay in the sums)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class LakeCollector(Collector):
    """Scrape-time gauges read from the lake, the vector store and the broker."""

    def __init__(self, stats: Callable[[], Any], queue_depth: QueueDepth | None = None) -> None:
        self._stats = stats
        self._queue_depth = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        docs = GaugeMetricFamily(
            "doclake_documents", "Documents by current status (silver.documents).", labels=["status"]
        )
        for status, n in stats.documents.items():
            docs.add_metric([status], n)
        yield docs
        yield GaugeMetricFamily("doclake_gold_chunks", "Rows in gold.chunks.", value=stats.chunks)
        yield GaugeMetricFamily("doclake_vectors", "Vectors in the vector store.", value=stats.vectors)
        yield GaugeMetricFamily(
            "doclake_index_size_bytes", "Bytes on disk of the vector index.", value=stats.index_size_bytes
        )
        if stats.last_ingested_at is not None:
            yield GaugeMetricFamily(
                "doclake_last_ingestion_timestamp_seconds",
                "When a document last became indexed (Unix time).",
                value=stats.last_ingested_at.timestamp(),
            )
        if self._queue_depth is not None:
            depth = GaugeMetricFamily("doclake_queue_depth", "Messages waiting in each broker queue.", labels=["queue"])
            try:
                for queue, n in self._queue_depth().items():
                    depth.add_metric([queue], n)
            except Exception:  # a broker outage must not take /metrics down with it
                pass
            yield depth


def render(*collectors: Collector) -> bytes:
    """The Prometheus text exposition of every event metric plus ``collectors``."""
    path = os.environ.get(MULTIPROC_ENV)
    # Decided by the storage prometheus_client chose at import, not by the variable now: a variable
    # set later in this process (a CLI command run in-process) must not hide the in-memory samples.
    if path and values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for c in collectors:
        registry.register(c)
    return generate_latest(registry)


class _Default(Collector):
    """The process's own default registry, re-exposed next to per-request collectors."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()
