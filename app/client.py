"""A small synchronous HTTP client for doclake (the CLI uses it; RAG apps can too)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from app.schemas import DocumentPublic, SearchResponse, UploadAccepted
from pipelines.contracts import DocumentStatus, MetadataValue

__all__ = ["DoclakeClient", "DoclakeHTTPError"]

_TERMINAL = {DocumentStatus.indexed, DocumentStatus.failed, DocumentStatus.deleted}


class DoclakeHTTPError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class DoclakeClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, timeout: float = 60.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DoclakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.text[:200]}
            raise DoclakeHTTPError(response.status_code, problem)
        return response.json()

    def upload(
        self,
        path: Path | str,
        *,
        doc_id: str | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> UploadAccepted:
        path = Path(path)
        form: dict[str, str] = {}
        if doc_id:
            form["doc_id"] = doc_id
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        with path.open("rb") as f:
            response = self._http.post("/v1/documents", files={"file": (path.name, f)}, data=form)
        return UploadAccepted.model_validate(self._check(response))

    def get(self, doc_id: str) -> DocumentPublic:
        return DocumentPublic.model_validate(self._check(self._http.get(f"/v1/documents/{doc_id}")))

    def delete(self, doc_id: str) -> DocumentPublic:
        return DocumentPublic.model_validate(self._check(self._http.delete(f"/v1/documents/{doc_id}")))

    def wait(self, doc_id: str, *, version: int | None = None, timeout: float = 600.0) -> DocumentPublic:
        """Poll until the document (at ``version`` or later) reaches a terminal status."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(doc_id)
            if doc.status in _TERMINAL and (version is None or doc.version >= version):
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{doc_id} still {doc.status.value} after {timeout:.0f}s")
            time.sleep(0.2)

    def search(self, query: str, *, top_k: int = 10, filter: dict[str, MetadataValue] | None = None) -> SearchResponse:
        body = {"query": query, "top_k": top_k, "filter": filter or {}}
        return SearchResponse.model_validate(self._check(self._http.post("/v1/search", json=body)))

    def health(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False
