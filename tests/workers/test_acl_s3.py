"""An object put into S3 by hand names its readers in user metadata: ``x-amz-meta-doclake-acl`` (a JSON array)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from pipelines.contracts.acl import InvalidAcl
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.objectstore.store import S3ObjectStore
from pipelines.runtime import Runtime
from workers import dispatch, tasks

BUCKET = "docs-bucket"
TEXT = b"Board minutes: the osprey project budget was approved unanimously."


@pytest.fixture()
def s3_runtime(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        monkeypatch.setattr(runtime, "objects", S3ObjectStore(BUCKET))
        monkeypatch.setattr(tasks, "runtime", lambda: runtime)
        monkeypatch.setattr(dispatch, "enqueue_processing", lambda t, d, v: None)
        yield runtime


def _put(key: str, body: bytes, **metadata: str) -> str:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)
    return f"s3://{BUCKET}/{key}"


def test_the_object_metadata_sets_the_acl_and_its_absence_keeps_it(s3_runtime: Runtime) -> None:
    uri = _put("raw/minutes.txt", TEXT, **{"doclake-acl": '["group:board", "user:ana"]'})
    first = tasks.register(uri, "minutes.txt", "default", "minutes", None)
    assert first is not None and not first["duplicate"]
    assert get_document(s3_runtime.lake, "default", "minutes")["acl"] == ["group:board", "user:ana"]  # type: ignore[index]
    # Overwritten without the metadata: a new version that keeps the acl (an edit never makes it public).
    uri = _put("raw/minutes.txt", TEXT + b" Next meeting in June.")
    second = tasks.register(uri, "minutes.txt", "default", "minutes", None)
    assert second is not None and second["version"] == first["version"] + 1
    assert get_document(s3_runtime.lake, "default", "minutes")["acl"] == ["group:board", "user:ana"]  # type: ignore[index]
    # JSON null in the metadata makes it readable by the tenant.
    uri = _put("raw/minutes.txt", TEXT, **{"doclake-acl": "null"})
    tasks.register(uri, "minutes.txt", "default", "minutes", None)
    assert get_document(s3_runtime.lake, "default", "minutes")["acl"] is None  # type: ignore[index]


def test_a_malformed_acl_in_the_object_metadata_registers_nothing(s3_runtime: Runtime) -> None:
    uri = _put("raw/minutes.txt", TEXT, **{"doclake-acl": '["*"]'})
    with pytest.raises(InvalidAcl, match="reserved"):
        tasks.register(uri, "minutes.txt", "default", "minutes", None)
    assert s3_runtime.lake.read(DOCUMENTS).num_rows == 0
