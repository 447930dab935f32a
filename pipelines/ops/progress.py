"""Progress of long operator commands: one tracker, rendered as a bar by the CLI or stored on a job.

The pipeline functions (reindex, reconcile, purge…) only call ``stage`` and ``advance``; how the
progress is shown is the adapter's business (a terminal bar, a JSON job record, nothing).
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

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
    """Renders progress states with rich on a terminal (stderr by default): one bar per stage, with
    done/total, the counters and an ETA; on a stream that is not a terminal, one line per finished stage.

    A stage's bar stops when it is complete or the next stage begins; ``close`` stops the last one
    (also registered at exit, since the commands hand the bar to ``Progress`` and never see it again).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr)
        self._bar: Any = None
        self._task: Any = None
        self._stage: str | None = None
        atexit.register(self.close)

    def __call__(self, state: ProgressState) -> None:
        complete = state.total is not None and state.done >= state.total
        if state.stage == self._stage and self._bar is None and complete:
            return  # the stage's bar was already closed complete (``Progress.finish`` reports again)
        if state.stage != self._stage or self._bar is None:
            self.close()
            self._start(state)
        extra = " ".join(f"{k}={v}" for k, v in sorted(state.counters.items()))
        self._bar.update(self._task, completed=state.done, total=state.total, extra=extra, unit=state.unit)
        if complete:
            self.close()

    def _start(self, state: ProgressState) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._stage = state.stage
        self._bar = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]} {task.fields[extra]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task = self._bar.add_task(state.stage, total=state.total, extra="", unit=state.unit)
        self._bar.start()

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is None:
            return
        # At interpreter exit the stream may already be closed (a test runner's capture, a closed pipe):
        # there is nothing left to draw on, and a traceback at exit would be the only output.
        with contextlib.suppress(ValueError):
            bar.stop()
