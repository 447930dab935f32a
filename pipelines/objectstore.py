"""Raw object storage (bronze files). Local disk on the embedded profile; S3 comes with the distributed one.

Object keys are built only from validated ids, a version and a content hash, never from a
user-supplied filename, so an upload cannot write outside the data root.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from pipelines.errors import DocumentNotFound

__all__ = ["LocalObjectStore", "ObjectStore", "raw_key"]


def raw_key(tenant: str, doc_id: str, version: int, sha256: str) -> str:
    return f"raw/{tenant}/{doc_id}/v{version:06d}-{sha256[:16]}"


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Store bytes under key; returns the object's URI."""
        ...

    def get(self, uri: str) -> bytes: ...

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

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)
