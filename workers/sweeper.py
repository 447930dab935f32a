"""Housekeeping with its broker side: a stuck document is re-enqueued as a Celery chain.

The sweep itself, compaction and vector-store upkeep are in ``pipelines.ops.housekeeping``; this
binds them to ``workers.dispatch`` for ``doclake up``'s housekeeping thread and ``doclake sweep``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pipelines.ingest.lifecycle import StuckDocument
from pipelines.ops.housekeeping import HousekeepingReport, housekeeping_tick
from pipelines.runtime import Runtime
from workers import dispatch

__all__ = ["housekeep_every", "housekeeping", "requeue"]

log = logging.getLogger("doclake.sweeper")


def requeue(doc: StuckDocument) -> None:
    """Send a stuck document's chain again, from the step its status names."""
    dispatch.enqueue_processing(doc.tenant, doc.doc_id, doc.version, from_status=doc.status)


def housekeeping(rt: Runtime, *, older_than_s: float | None = None) -> HousekeepingReport:
    """One housekeeping tick: re-enqueue stuck documents, compact small files, optimize vector stores."""
    return housekeeping_tick(rt, requeue, older_than_s=older_than_s)


def housekeep_every(
    rt: Runtime,
    every_s: float,
    stopping: threading.Event,
    *,
    older_than_s: float | None = None,
    on_report: Callable[[HousekeepingReport], None] | None = None,
) -> None:
    """Run ``housekeeping`` now and then every ``every_s`` seconds until ``stopping`` is set.

    A failed tick is logged and the next one runs: the service must outlive a transient lake or
    broker error.
    """
    while True:
        try:
            report = housekeeping(rt, older_than_s=older_than_s)
        except Exception:
            log.exception("housekeeping failed")
        else:
            # How long each part took: on an object store the vector upkeep is what grows first.
            log.info(
                "housekeeping: requeued %d, compacted %s, took %s s", report.requeued, report.compacted, report.seconds
            )
            if on_report is not None:
                on_report(report)
        if stopping.wait(every_s):
            return
