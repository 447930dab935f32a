"""Where the cores went during a bench window: CPU seconds by process role, from /proc (Linux only).

A pipeline on one machine shares its cores between the encoder, extraction, the API, the broker and, in the
S3 bench, the S3 server itself; a throughput ratio against a raw encode is bounded by what the others take.
Each process is counted with the children it reaped (``cutime``/``cstime``), so extraction children forked
from the extraction server and gone by the end are in their server's figure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["CpuUse", "cpu_table", "measure_cpu"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# First match wins: a command line containing the key is that role.
_ROLES: tuple[tuple[str, str], ...] = (
    ("--queues embed", "embedding worker"),
    ("--queues extract", "extraction workers (and their children)"),
    ("--queues ocr", "OCR worker"),
    ("extract.forkserver", "extraction workers (and their children)"),
    ("forkserver", "extraction workers (and their children)"),
    ("app.cli serve", "API"),
    ("app.cli sweep", "housekeeping"),
    ("app.cli up", "supervisor (doclake up)"),
    ("app.cli stream", "update stream"),
    ("weed", "S3 server (SeaweedFS)"),
    ("redis-server", "Redis (broker, locks)"),
)


class CpuUse(BaseModel):
    """CPU seconds spent during one window."""

    wall_s: float = Field(description="Seconds the window lasted.")
    machine_busy_s: float = Field(description="CPU seconds the whole machine spent (all cores, /proc/stat).")
    cores: int = Field(description="Cores the machine has.")
    by_role: dict[str, float] = Field(description="CPU seconds by process role; 'other' is every other process.")

    @property
    def idle_s(self) -> float:
        return max(0.0, self.wall_s * self.cores - self.machine_busy_s)


def _role(cmdline: str) -> str:
    for key, role in _ROLES:
        if key in cmdline:
            return role
    return "other"


def _processes() -> dict[int, tuple[float, str]]:
    """Every process's CPU seconds so far (its own and its reaped children's) and its role."""
    found: dict[int, tuple[float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        found[int(entry.name)] = (ticks / _TICK, _role(cmdline) if cmdline else "other")
    return found


def _machine_busy() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK


@contextmanager
def measure_cpu(*, self_role: str = "bench (client)") -> Iterator[list[CpuUse]]:
    """Yields a list that holds, after the block, the window's :class:`CpuUse` (one item). This process
    counts as ``self_role``."""
    import time

    me = os.getpid()
    out: list[CpuUse] = []
    before, busy, started = _processes(), _machine_busy(), time.perf_counter()
    yield out
    after, busy_after, wall = _processes(), _machine_busy(), time.perf_counter() - started
    roles: dict[str, float] = {}
    for pid, (seconds, role) in after.items():
        spent = seconds - before.get(pid, (0.0, role))[0]
        if spent > 0:
            name = self_role if pid == me else role
            roles[name] = roles.get(name, 0.0) + spent
    out.append(
        CpuUse(
            wall_s=round(wall, 3),
            machine_busy_s=round(busy_after - busy, 2),
            cores=os.cpu_count() or 1,
            by_role={k: round(v, 2) for k, v in sorted(roles.items(), key=lambda kv: -kv[1])},
        )
    )


def cpu_table(use: CpuUse, *, extra: Mapping[str, float] | None = None) -> list[list[object]]:
    """Rows (role, CPU s, share of the machine's busy seconds) for a markdown table, idle last."""
    rows: list[list[object]] = []
    busy = use.machine_busy_s or 1.0
    for role, seconds in {**use.by_role, **(extra or {})}.items():
        rows.append([role, round(seconds, 2), f"{100 * seconds / busy:.0f} %"])
    rows.append(["(idle cores)", round(use.idle_s, 2), ""])
    rows.append(["machine busy", use.machine_busy_s, f"of {round(use.wall_s * use.cores, 2)} core-s"])
    return rows
