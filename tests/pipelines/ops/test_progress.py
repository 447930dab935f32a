"""The operator commands' progress bar (rich): one line per finished stage when not on a terminal."""

from __future__ import annotations

import io

from pipelines.ops.progress import Progress, TerminalBar


def test_terminal_bar_renders_each_stage_once_off_a_terminal() -> None:
    out = io.StringIO()
    bar = TerminalBar(out)
    progress = Progress(bar, min_interval_s=0)
    progress.stage("re-embedding", total=3)
    for _ in range(3):
        progress.advance(1, chunks=4)
    progress.finish()  # reports the completed stage again: no second line
    progress.stage("switching", unit="indexes")
    progress.advance(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("re-embedding") and "3/3 documents chunks=12" in lines[0]
    assert lines[1].startswith("switching") and "1/? indexes" in lines[1]


def test_closing_a_bar_whose_stream_is_gone_is_quiet() -> None:
    stream = io.StringIO()
    bar = TerminalBar(stream)
    progress = Progress(bar, min_interval_s=0)
    progress.stage("re-embedding", total=3)
    progress.advance(1)
    stream.close()  # as a test runner's capture is at interpreter exit, when the atexit hook runs
    bar.close()
    bar.close()  # idempotent
