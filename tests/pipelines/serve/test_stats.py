"""/v1/stats' vector-store size: measured at most once per few seconds per process."""

from __future__ import annotations

from pathlib import Path

from pipelines.runtime import Runtime
from pipelines.serve.stats import collect_stats, index_size


def test_the_index_size_is_answered_from_the_last_measure_until_it_is_too_old(runtime: Runtime) -> None:
    settings = runtime.settings
    first = index_size(settings, max_age_s=0)
    assert collect_stats(runtime).index_size_bytes == first
    (Path(settings.vectors_root) / "grown.bin").write_bytes(b"x" * 1000)
    # Polls within the window do not walk the store again: they see the size it had.
    assert index_size(settings) == first
    assert collect_stats(runtime).index_size_bytes == first
    # A measure older than the caller allows is taken again.
    assert index_size(settings, max_age_s=0) == first + 1000
    assert index_size(settings) == first + 1000


def test_a_new_vector_count_measures_the_size_again(runtime: Runtime) -> None:
    # A stats call right after an ingest must not show the size from before it (it did, for 5 s).
    settings = runtime.settings
    first = index_size(settings, max_age_s=0, vectors=0)
    (Path(settings.vectors_root) / "grown.bin").write_bytes(b"x" * 1000)
    assert index_size(settings, vectors=0) == first  # same count, within the window: the last measure
    assert index_size(settings, vectors=3) == first + 1000
