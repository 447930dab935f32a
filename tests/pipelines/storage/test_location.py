"""Storage helpers: one S3 client per process and configuration (botocore's model costs a core's tenth);
as many embedding processes as the lake's place calls for."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import Settings
from pipelines.storage.location import embed_processes, s3_client


def test_one_client_per_configuration_and_a_new_one_for_new_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")
    settings = Settings(s3_endpoint_url="http://127.0.0.1:9")
    client = s3_client(settings)
    assert s3_client(settings) is client
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second-key")
    rotated = s3_client(settings)
    assert rotated is not client
    assert rotated._request_signer._credentials.access_key == "second-key"
    assert s3_client(Settings(s3_endpoint_url="http://127.0.0.1:10")) is not rotated


def test_a_remote_lake_gets_a_second_embedding_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCLAKE_EMBED_CONCURRENCY", raising=False)
    assert embed_processes(Settings(data_dir=tmp_path)) == 1  # local: the cores are full already
    assert embed_processes(Settings(data_dir=tmp_path, lake_url="s3://lake/warehouse")) == 2
    assert embed_processes(Settings(data_dir=tmp_path, vectors_url="s3://lake/vectors")) == 2
    assert embed_processes(Settings(data_dir=tmp_path, lake_url="file:///srv/lake")) == 1
    pinned = Settings(data_dir=tmp_path, lake_url="s3://lake/warehouse", embed_concurrency=1)
    assert embed_processes(pinned) == 1  # what the operator set wins
