"""An s3:// lake refuses to start, with a message naming the cause, when the bucket is missing or our
credentials are wrong; and then it has written nothing to the bucket.

Real S3 server (SeaweedFS, signatures checked). The conditional-PUT refusal has its own test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ConfigError
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from tests.integration.servers import S3_KEY, S3_SECRET, free_port, seaweed_s3

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "lake"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with seaweed_s3(tmp_path_factory.mktemp("s3-refusals"), buckets=(BUCKET,)) as url:
        yield url


def _keys(endpoint: str, bucket: str = BUCKET) -> list[str]:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET
    )
    listed: dict[str, Any] = s3.list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def _settings(tmp_path: Path, endpoint: str, bucket: str = BUCKET) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        s3_endpoint_url=endpoint,
        lake_url=f"s3://{bucket}/lake",
        vectors_url=f"s3://{bucket}/vectors",
    )


def _credentials(monkeypatch: pytest.MonkeyPatch, key: str, secret: str) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    # boto3's default session keeps the credentials it first resolved: start each test without it.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def _env(tmp_path: Path, endpoint: str, *, key: str, secret: str, bucket: str = BUCKET) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "DOCLAKE_DATA_DIR": str(tmp_path / "data"),
        "DOCLAKE_S3_ENDPOINT_URL": endpoint,
        "DOCLAKE_LAKE_URL": f"s3://{bucket}/lake",
        "DOCLAKE_VECTORS_URL": f"s3://{bucket}/vectors",
        "DOCLAKE_PORT": str(free_port()),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def test_wrong_credentials_are_named_and_nothing_is_written(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials(monkeypatch, S3_KEY, "not-the-secret")
    with pytest.raises(ConfigError, match=r"AWS_ACCESS_KEY_ID.*AWS_SECRET_ACCESS_KEY"):
        Runtime.from_settings(_settings(tmp_path, endpoint))
    assert _keys(endpoint) == []


def test_serve_with_wrong_credentials_exits_with_the_reason(endpoint: str, tmp_path: Path) -> None:
    env = _env(tmp_path, endpoint, key="nobody", secret="not-the-secret")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode != 0
    assert "credentials" in done.stderr and "AWS_ACCESS_KEY_ID" in done.stderr, done.stderr[-3000:]
    assert _keys(endpoint) == []
    local = [p for p in (tmp_path / "data").rglob("*") if p.name == "_delta_log" or p.name.endswith(".lance")]
    assert not local


def test_missing_bucket_is_named(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _credentials(monkeypatch, S3_KEY, S3_SECRET)
    with pytest.raises(ConfigError, match="'no-such-bucket' does not exist"):
        Runtime.from_settings(_settings(tmp_path, endpoint, bucket="no-such-bucket"))
    assert _keys(endpoint) == []
