"""Progress of long operator commands: one tracker, rendered as a bar by the CLI or stored on a job.

The pipeline functions (reindex, reconcile, purge…) only call ``stage`` and ``advance``; how the
progress is shown is the adapter's business (a terminal bar, a JSON job record, nothing).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from pydantic import BaseModel, Field

__all__ = ["Progress", "ProgressState", "TerminalBar"]


class ProgressState(BaseModel):
    stage: str = Field(default="", description="What is being done now.")
    done: int = Field(default=0, description="Units finished in this stage.")
    total: int | None = Field(default=None, description="Units in this stage, when known.")
    unit: str = Field(default="documents", description="What a unit is (documents, chunks, files).")
    elapsed_s: float = Field(default=0.0, description="Seconds since the stage started.")
    eta_s: float | None = Field(default=None, description="Estimated seconds left in this stage.")
    counters: dict[str, int] = Field(default_factory=dict, description="Running totals (e.g. chunks embedded).")


class Progress:
    """A thread-safe progress tracker that reports every change to ``on_update`` (at most every 0.2 s)."""

    def __init__(self, on_update: Callable[[ProgressState], None] | None = None, *, min_interval_s: float = 0.2):
        self._on_update = on_update
        self._min_interval = min_interval_s
        self._lock = threading.Lock()
        self._state = ProgressState()
        self._started = time.monotonic()
        self._last_report = 0.0

    def stage(self, name: str, total: int | None = None, unit: str = "documents") -> None:
        with self._lock:
            self._state = ProgressState(stage=name, total=total, unit=unit, counters=self._state.counters)
            self._started = time.monotonic()
        self._report(force=True)

    def advance(self, n: int = 1, **counters: int) -> None:
        with self._lock:
            self._state.done += n
            for key, value in counters.items():
                self._state.counters[key] = self._state.counters.get(key, 0) + value
        self._report()

    def snapshot(self) -> ProgressState:
        with self._lock:
            state = self._state.model_copy(deep=True)
        state.elapsed_s = round(time.monotonic() - self._started, 3)
        if state.total and state.done:
            rate = state.done / max(state.elapsed_s, 1e-6)
            state.eta_s = round(max(0, state.total - state.done) / rate, 1)
        return state

    def finish(self) -> None:
        self._report(force=True)

    def _report(self, *, force: bool = False) -> None:
        if self._on_update is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < self._min_interval:
            return
        self._last_report = now
        self._on_update(self.snapshot())


class TerminalBar:
    """Renders progress states as one rewritten line on a terminal (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width

    def __call__(self, state: ProgressState) -> None:
        if state.total:
            filled = int(self.width * min(1.0, state.done / state.total))
            bar = "#" * filled + "-" * (self.width - filled)
            eta = f" eta {state.eta_s:.0f}s" if state.eta_s is not None else ""
            line = f"{state.stage:<18} [{bar}] {state.done}/{state.total} {state.unit}{eta}"
        else:
            line = f"{state.stage:<18} {state.done} {state.unit}"
        extra = " ".join(f"{k}={v}" for k, v in sorted(state.counters.items()))
        end = "\n" if state.total is not None and state.done >= state.total else ""
        self.stream.write(f"\r{line} {extra}".rstrip() + end)
        self.stream.flush()
