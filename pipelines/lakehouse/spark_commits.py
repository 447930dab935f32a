"""Spark-side Delta commits: idempotent per micro-batch, retried when a concurrent writer wins.

Idempotency: every write of a micro-batch carries (txnAppId, txnVersion) = (the stream's id, the
batch id). Delta records the pair in the commit; a re-run of the same batch after a crash finds it
and skips the write, so nothing is written twice. Appends pass them as writer options; MERGEs read
them from the session confs ``spark.databricks.delta.write.txnAppId`` / ``txnVersion``.

Conflicts: delta-rs processes (API, Celery workers) commit to the same tables. Delta's optimistic
concurrency makes the loser raise a ``Concurrent…Exception``; we re-run the whole operation on the
new snapshot with jittered backoff, as the delta-rs side does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, TypeVar

from pipelines.errors import LakeWriteConflict
from pipelines.retry import retry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["append_idempotent", "is_conflict", "retry_conflicts", "txn"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_ATTEMPTS = 20
_txn_lock = threading.Lock()
_CONFLICT_MARKERS = (
    "ConcurrentAppend",
    "ConcurrentDelete",
    "ConcurrentTransaction",
    "ConcurrentWrite",
    "MetadataChanged",
    "ProtocolChanged",
    "DELTA_CONCURRENT",
    "FileAlreadyExistsException",
)


def is_conflict(error: BaseException) -> bool:
    """True when a Delta commit lost a race (the operation may simply be re-run)."""
    text = f"{type(error).__name__}: {error}"
    return any(marker in text for marker in _CONFLICT_MARKERS)


def retry_conflicts(operation: Callable[[], T], *, what: str) -> T:
    """Run ``operation``, re-running it while it loses commit races.

    Raises:
        LakeWriteConflict: still conflicting after many attempts.
    """
    return retry(
        operation,
        retry_on=is_conflict,
        attempts=_MAX_ATTEMPTS,
        base=0.1,
        cap=2.0,
        what=what,
        give_up=lambda e: LakeWriteConflict(f"{what}: commit kept conflicting: {str(e)[:500]}"),
    )


@contextmanager
def txn(spark: SparkSession, app_id: str, version: int) -> Iterator[None]:
    """Make the DML (MERGE) run inside the block idempotent for (app_id, version).

    Session confs are global to the session, so the block holds a lock and always unsets them:
    a later write must never inherit another batch's transaction id.
    """
    with _txn_lock:
        spark.conf.set("spark.databricks.delta.write.txnAppId", app_id)
        spark.conf.set("spark.databricks.delta.write.txnVersion", str(version))
        try:
            yield
        finally:
            spark.conf.unset("spark.databricks.delta.write.txnAppId")
            spark.conf.unset("spark.databricks.delta.write.txnVersion")


def append_idempotent(
    df: DataFrame,
    path: str,
    *,
    app_id: str,
    version: int,
    lock: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> None:
    """Append ``df`` to the Delta table at ``path`` once per (app_id, version), each attempt inside ``lock()``."""

    def run() -> None:
        with lock():
            writer = df.write.format("delta").mode("append").option("txnAppId", app_id).option("txnVersion", version)
            writer.save(path)

    retry_conflicts(run, what=f"append to {path}")
