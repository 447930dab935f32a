"""A real S3 server (SeaweedFS) and Redis for the storage tests, one of each per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import S3_KEY, S3_SECRET, redis_server, seaweed_s3


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with seaweed_s3(tmp_path_factory.mktemp("weed"), buckets=("lake", "objects")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)


def s3_settings_kwargs(endpoint: str, redis: str | None, prefix: str, data_dir: Path) -> dict[str, object]:
    """Settings for a lake, vectors and objects on the S3 server under ``prefix`` (one per test)."""
    return {
        "data_dir": data_dir,
        "lake_url": f"s3://lake/{prefix}/warehouse",
        "vectors_url": f"s3://lake/{prefix}/vectors",
        "object_store_url": f"s3://objects/{prefix}",
        "lock_url": redis,
        "s3_endpoint_url": endpoint,
    }
