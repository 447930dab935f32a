"""Re-enqueue documents stuck in a non-terminal status (the Delta status is the truth).

The embedded broker has no visibility timeout, and even Redis loses a message when a whole worker
dies before its visibility timeout ends: without this, such a document would stay ``extracting``
forever. Steps are idempotent, so a document that was merely slow is processed once more at worst.
"""

from __future__ import annotations

import logging

from pipelines.ingest.lifecycle import find_stuck, touch
from pipelines.runtime import Runtime
from workers.dispatch import enqueue_processing

__all__ = ["sweep_once"]

log = logging.getLogger("doclake.sweeper")


def sweep_once(rt: Runtime, *, older_than_s: float | None = None) -> int:
    """Re-enqueue every stuck document once; returns how many."""
    stuck = find_stuck(rt, older_than_s=older_than_s if older_than_s is not None else rt.settings.stuck_after_s)
    count = 0
    for doc in stuck:
        if not touch(rt, doc):
            continue  # superseded since we looked
        log.warning("re-enqueueing stuck document %s v%d (%s)", doc.doc_id, doc.version, doc.status.value)
        enqueue_processing(doc.tenant, doc.doc_id, doc.version, from_status=doc.status)
        count += 1
    return count
