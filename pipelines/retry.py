"""The one retry policy: exponential backoff with jitter, for commits, remote calls and tasks."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["backoff_delay", "retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base`` doubled per attempt, at most ``cap``.

    Jitter (a factor of 0.5 to 1.5) keeps processes that lost the same race from retrying in lockstep.
    """
    delay: float = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 30))
    return delay * random.uniform(0.5, 1.5) if jitter else delay


def retry(
    operation: Callable[[], T],
    *,
    retry_on: Callable[[Exception], bool],
    attempts: int,
    base: float,
    cap: float,
    what: str,
    give_up: Callable[[Exception], Exception] | None = None,
) -> T:
    """Run ``operation``, re-running it after a backoff while it raises an error ``retry_on`` accepts.

    After ``attempts`` tries the last error is raised, or ``give_up(error)`` raised from it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as e:
            if not retry_on(e):
                raise
            if attempt == attempts:
                if give_up is None:
                    raise
                raise give_up(e) from e
            log.debug("%s failed (attempt %d of %d), retrying: %s", what, attempt, attempts, e)
            time.sleep(backoff_delay(attempt, base=base, cap=cap))
    raise AssertionError("unreachable")
