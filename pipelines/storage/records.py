"""Small shared records (job records, the latest data-product results) where every host sees them.

Beside a local lake they are files under ``<data>/run`` (today's layout); beside a lake on S3 they
are objects under ``<lake>/_doclake/state/``, so a job started on one host is listed by another and
nothing of it is written to either host's data dir. A record is replaced whole (a file rename, an S3
PUT), so a reader sees the old record or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pipelines.settings import Settings
from pipelines.storage.location import is_remote, s3_client, split_s3

__all__ = ["LocalRecords", "Records", "S3Records", "records_for"]


class Records(Protocol):
    where: str

    def write(self, key: str, text: str) -> None: ...

    def read(self, key: str) -> str | None: ...

    def keys(self, prefix: str) -> list[str]: ...


class LocalRecords:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def write(self, key: str, text: str) -> None:
        path = self.folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def read(self, key: str) -> str | None:
        try:
            return (self.folder / key).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def keys(self, prefix: str) -> list[str]:
        folder = self.folder / prefix
        if not folder.is_dir():
            return []
        return [
            f"{prefix.rstrip('/')}/{p.name}" for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        ]


class S3Records:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._s3, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.where = f"s3://{bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key: str, text: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=text.encode())

    def read(self, key: str) -> str | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return body.decode()

    def keys(self, prefix: str) -> list[str]:
        base = self._key(prefix.rstrip("/")) + "/"
        found: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            found.extend(o["Key"][len(self._key("")) :].lstrip("/") for o in page.get("Contents", []))
        return found


def records_for(settings: Settings) -> Records:
    """Records beside the lake: S3 objects for a lake on S3, else files under ``<data>/run``."""
    root = settings.lake_root
    if is_remote(root):
        bucket, prefix = split_s3(root)
        return S3Records(s3_client(settings), bucket, "/".join(p for p in (prefix, "_doclake", "state") if p))
    return LocalRecords(settings.run_dir)
