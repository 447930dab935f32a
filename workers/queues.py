"""Broker queue depth, for metrics: how many messages wait in each queue."""

from __future__ import annotations

from celery import Celery

__all__ = ["queue_depth"]


def queue_depth(app: Celery) -> dict[str, int]:
    """Messages waiting per queue of ``app``; a passive declare works on every kombu transport."""
    depth: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues or []:
            depth[queue.name] = int(channel.queue_declare(queue=queue.name, passive=True).message_count)
    return depth
