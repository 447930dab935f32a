"""Raw object storage (bronze files). Local disk on the embedded profile; S3 comes with the distributed one.

Object keys are built only from validated ids, a version and a content hash, never from a
user-supplied filename, so an upload cannot write outside the data root.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pipelines.errors import DocumentNotFound

__all__ = [
    "ACL_METADATA_KEY",
    "LocalObjectStore",
    "ObjectStore",
    "S3ObjectStore",
    "StoredObject",
    "parse_raw_key",
    "raw_key",
    "split_s3_uri",
]


_RAW_KEY = re.compile(r"(?:^|/)raw/(?P<tenant>[^/]+)/(?P<doc_id>[^/]+)/v(?P<version>\d{6})-(?P<sha>[0-9a-f]{16})$")


def raw_key(tenant: str, doc_id: str, version: int, sha256: str) -> str:
    return f"raw/{tenant}/{doc_id}/v{version:06d}-{sha256[:16]}"


def parse_raw_key(key: str) -> tuple[str, str, int] | None:
    """(tenant, doc_id, version) when ``key`` is one doclake itself wrote, else None.

    S3 notifies us of our own uploads too; recognising our key scheme is what stops an upload from
    being ingested a second time as a "new" object.
    """
    m = _RAW_KEY.search(key)
    return (m["tenant"], m["doc_id"], int(m["version"])) if m else None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/with/prefix") of an s3:// URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// uri: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class StoredObject(BaseModel):
    """An object's bytes and the user metadata it was stored with (S3 ``x-amz-meta-*``, without the prefix)."""

    data: bytes
    user_metadata: dict[str, str] = Field(default_factory=dict)


# User metadata naming who may read an object put into the bucket by hand: ``x-amz-meta-doclake-acl`` holding
# a JSON array of principals (``null``: the whole tenant). Read from the GetObject that fetches the bytes, so
# the acl and the bytes are of one object version (a tag would need a second request, and could race an overwrite).
ACL_METADATA_KEY = "doclake-acl"


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Store bytes under key; returns the object's URI."""
        ...

    def get(self, uri: str) -> bytes: ...

    def get_object(self, uri: str) -> StoredObject:
        """The object's bytes with its user metadata, in one request."""
        ...

    def delete(self, uri: str) -> None: ...


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, uri: str) -> Path:
        path = Path(uri.removeprefix("file://")).resolve()
        if not path.is_relative_to(self.root):
            raise DocumentNotFound(f"object {uri!r} is outside the object store")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a reader never sees half an object, even if this process dies mid-write.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise DocumentNotFound(f"raw object {uri} is missing") from e

    def get_object(self, uri: str) -> StoredObject:
        return StoredObject(data=self.get(uri))  # local files carry no user metadata

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)


class S3ObjectStore:
    """Objects in an S3-compatible bucket (AWS, MinIO, moto), under an optional key prefix."""

    def __init__(
        self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1"
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._s3: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None, region: str = "us-east-1") -> S3ObjectStore:
        bucket, prefix = split_s3_uri(url)
        return cls(bucket, prefix=prefix, endpoint_url=endpoint_url, region=region)

    def put(self, key: str, data: bytes) -> str:
        full = self.prefix + key
        self._s3.put_object(Bucket=self.bucket, Key=full, Body=data)
        return f"s3://{self.bucket}/{full}"

    def get(self, uri: str) -> bytes:
        return self.get_object(uri).data

    def get_object(self, uri: str) -> StoredObject:
        bucket, key = split_s3_uri(uri)
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey as e:
            raise DocumentNotFound(f"raw object {uri} is missing") from e
        # boto3 gives user metadata lower-cased and without the x-amz-meta- prefix.
        return StoredObject(data=response["Body"].read(), user_metadata=dict(response.get("Metadata") or {}))

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self._s3.delete_object(Bucket=bucket, Key=key)

    def delete_prefix(self, key_prefix: str) -> int:
        """Delete every object under ``key_prefix`` (below this store's prefix); returns how many."""
        full = self.prefix + key_prefix
        removed = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
        return removed
