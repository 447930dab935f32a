"""Pool-process warm-up: an extraction-only process builds its runtime before its first task."""

from __future__ import annotations

import pytest

from workers import signals, tasks


def test_an_extraction_process_builds_its_runtime_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    monkeypatch.setattr(tasks, "runtime", lambda: built.append(1))
    monkeypatch.setattr(signals, "LOAD_MODEL", False)
    thread = signals._warm_runtime()
    assert thread is not None
    thread.join(timeout=30)
    assert built == [1]


def test_a_model_process_leaves_it_to_the_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    monkeypatch.setattr(tasks, "runtime", lambda: built.append(1))
    monkeypatch.setattr(signals, "LOAD_MODEL", True)
    assert signals._warm_runtime() is None
    assert built == []
