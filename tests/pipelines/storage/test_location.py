"""The S3 client is built once per process and configuration (botocore's model costs a core's tenth)."""

from __future__ import annotations

import pytest

from pipelines.settings import Settings
from pipelines.storage.location import s3_client


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
