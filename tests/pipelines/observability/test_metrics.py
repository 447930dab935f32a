"""Event metrics from several processes add up in one exposition (prometheus-client multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipelines.observability import metrics


def _in_process(code: str, multiproc: Path) -> str:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(multiproc)}
    done = subprocess.run(
        [sys.executable, "-c", f"from pipelines.observability import metrics\n{code}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_counters_from_worker_processes_reach_the_exposition(tmp_path: Path) -> None:
    folder = metrics.reset_multiproc_dir(tmp_path / "run")
    for n in (3, 4):  # two "worker processes", each gone before the scrape
        _in_process(f"metrics.CHUNKS.labels(source='embedded').inc({n})", folder)
    _in_process("metrics.record_stream_lag(2.5)", folder)
    text = _in_process("import sys; sys.stdout.write(metrics.render().decode())", folder)
    assert 'doclake_chunks_total{source="embedded"} 7.0' in text
    # The stream's gauge is "live": its process has exited without marking itself dead, so it still shows.
    assert 'doclake_stream_lag_seconds{stream="documents_updates"} 2.5' in text


def test_single_process_exposition_has_the_stream_lag_seam() -> None:
    metrics.record_stream_lag(-1.0, stream="unit")  # clock skew never reports a negative lag
    assert 'doclake_stream_lag_seconds{stream="unit"} 0.0' in metrics.render().decode()
