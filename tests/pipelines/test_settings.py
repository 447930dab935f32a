"""Defaults that depend on where the lake is."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import Settings


def test_a_remote_lake_gets_a_second_embedding_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCLAKE_EMBED_CONCURRENCY", raising=False)
    assert Settings(data_dir=tmp_path).resolved_embed_concurrency == 1  # local: the cores are full already
    assert Settings(data_dir=tmp_path, lake_url="s3://lake/warehouse").resolved_embed_concurrency == 2
    assert Settings(data_dir=tmp_path, vectors_url="s3://lake/vectors").resolved_embed_concurrency == 2
    assert Settings(data_dir=tmp_path, lake_url="file:///srv/lake").resolved_embed_concurrency == 1
    pinned = Settings(data_dir=tmp_path, lake_url="s3://lake/warehouse", embed_concurrency=1)
    assert pinned.resolved_embed_concurrency == 1  # what the operator set wins
