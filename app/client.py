"""Python clients for doclake's HTTP API: :class:`DoclakeClient` (sync) and :class:`AsyncDoclakeClient`.

Both speak in the API's own models (``app.schemas``: ``UploadAccepted``, ``DocumentPublic``,
``SearchResponse``, ``RagContext`` …), built once per call by a shared request table, so the two
clients cannot drift apart. Retries: a 429 or 503 answer, or a connection that could not be made,
is retried with exponential backoff and jitter (``Retry-After`` is honoured when the server sends
it); every other error raises :class:`DoclakeHTTPError` with the problem details at once.

Uploading by S3 URI is not offered yet: the API has no route that registers an object by URI until
the object-store issue lands (uploads send the bytes).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, Field

from app.schemas import (
    BatchUploadAccepted,
    DocumentList,
    DocumentPublic,
    LakeStats,
    ProductList,
    RagContext,
    RagQuery,
    SearchQuery,
    SearchResponse,
    UploadAccepted,
)
from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.ids import MetadataValue
from pipelines.contracts.search import SearchMode

__all__ = ["AsyncDoclakeClient", "DoclakeClient", "DoclakeHTTPError", "RetryPolicy", "Source"]

T = TypeVar("T")

Source = Path | str | bytes
# A file for upload_many given as (filename, bytes).
NamedBytes = tuple[str, bytes]
"""What to upload: a path, or the bytes themselves (then pass ``filename``)."""


class DoclakeHTTPError(Exception):
    """The API answered with an error; ``problem`` holds its RFC 9457 problem details."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class RetryPolicy(BaseModel):
    max_retries: int = Field(default=5, ge=0, description="Retries after the first attempt.")
    backoff_s: float = Field(default=0.5, gt=0, description="First delay; doubled on every retry.")
    max_backoff_s: float = Field(default=10.0, gt=0, description="Longest single delay.")
    statuses: frozenset[int] = Field(default=frozenset({429, 503}), description="Answers that are retried.")

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), self.max_backoff_s)
        # Full jitter: clients that failed together do not retry together.
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))


@dataclass
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    kwargs: dict[str, Any] = field(default_factory=dict)
    text: bool = False  # the answer is text (Prometheus exposition), not JSON


def _read_source(source: Source, filename: str | None) -> tuple[str, bytes]:
    # Read once into memory: a retried upload must send the same body again.
    if isinstance(source, bytes):
        return filename or "upload", source
    path = Path(source)
    return filename or path.name, path.read_bytes()


class _Calls:
    """Every API call as data: method, path, arguments and how to parse the answer."""

    @staticmethod
    def upload(
        source: Source, *, filename: str | None, doc_id: str | None, metadata: dict[str, MetadataValue] | None
    ) -> _Call[UploadAccepted]:
        name, data = _read_source(source, filename)
        form: dict[str, str] = {}
        if doc_id:
            form["doc_id"] = doc_id
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        return _Call(
            "POST", "/v1/documents", UploadAccepted.model_validate, {"files": {"file": (name, data)}, "data": form}
        )

    @staticmethod
    def upload_many(
        sources: list[Source | NamedBytes],
        *,
        doc_ids: list[str | None] | None,
        metadata: dict[str, MetadataValue] | None,
    ) -> _Call[BatchUploadAccepted]:
        files = [("files", s if isinstance(s, tuple) else _read_source(s, None)) for s in sources]
        form: dict[str, str] = {}
        if doc_ids is not None:
            form["doc_ids"] = json.dumps(doc_ids)
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        return _Call("POST", "/v1/documents/batch", BatchUploadAccepted.model_validate, {"files": files, "data": form})

    @staticmethod
    def get(doc_id: str) -> _Call[DocumentPublic]:
        return _Call("GET", f"/v1/documents/{doc_id}", DocumentPublic.model_validate)

    @staticmethod
    def list(status: DocumentStatus | None, limit: int, offset: int) -> _Call[DocumentList]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status.value
        return _Call("GET", "/v1/documents", DocumentList.model_validate, {"params": params})

    @staticmethod
    def delete(doc_id: str) -> _Call[DocumentPublic]:
        return _Call("DELETE", f"/v1/documents/{doc_id}", DocumentPublic.model_validate)

    @staticmethod
    def search(query: SearchQuery) -> _Call[SearchResponse]:
        return _Call("POST", "/v1/search", SearchResponse.model_validate, {"json": query.model_dump(mode="json")})

    @staticmethod
    def rag_context(query: RagQuery) -> _Call[RagContext]:
        return _Call("POST", "/v1/rag/context", RagContext.model_validate, {"json": query.model_dump(mode="json")})

    @staticmethod
    def stats() -> _Call[LakeStats]:
        return _Call("GET", "/v1/stats", LakeStats.model_validate)

    @staticmethod
    def metrics() -> _Call[str]:
        return _Call("GET", "/metrics", str, text=True)

    @staticmethod
    def products(evaluate: bool) -> _Call[ProductList]:
        return _Call("GET", "/v1/products", ProductList.model_validate, {"params": {"evaluate": evaluate}})


def _parse(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.text[:200]}
        raise DoclakeHTTPError(response.status_code, problem if isinstance(problem, dict) else {"detail": problem})
    return call.parse(response.text if call.text else response.json())


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _done(doc: DocumentPublic, version: int | None) -> bool:
    return doc.status.terminal and (version is None or doc.version >= version)


class DoclakeClient:
    """Synchronous client.

    Args:
        base_url: where the API listens.
        timeout: seconds per HTTP request.
        retry: the retry policy for 429/503 and refused connections.
        api_key: sent as ``Authorization: Bearer <key>`` when the service requires keys.
        http: an existing ``httpx.Client`` to send requests through (e.g. FastAPI's TestClient).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, headers=_auth(api_key))
        if http is not None:
            self._http.headers.update(_auth(api_key))
        self._owns_http = http is None
        self.retry = retry or RetryPolicy()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> DoclakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _do(self, call: _Call[T]) -> T:
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = self._http.request(call.method, call.path, **call.kwargs)
            except httpx.ConnectError:
                if attempt == self.retry.max_retries:
                    raise
                time.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.max_retries:
                time.sleep(self.retry.delay(attempt, response))
                continue
            return _parse(call, response)
        raise AssertionError("unreachable")

    def upload(
        self,
        source: Source,
        *,
        filename: str | None = None,
        doc_id: str | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> UploadAccepted:
        """Upload a file (or bytes) as a new document, or as a new version of ``doc_id``."""
        return self._do(_Calls.upload(source, filename=filename, doc_id=doc_id, metadata=metadata))

    def upload_many(
        self,
        sources: list[Source | NamedBytes],
        *,
        doc_ids: list[str | None] | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> BatchUploadAccepted:
        """Upload many files (paths, bytes, or (filename, bytes)) in one request (``/v1/documents/batch``):
        far cheaper per small file.

        ``doc_ids`` gives each file's document (None: derived from its content); ``metadata`` applies to all.
        """
        return self._do(_Calls.upload_many(sources, doc_ids=doc_ids, metadata=metadata))

    def upload_and_wait(
        self,
        source: Source,
        *,
        filename: str | None = None,
        doc_id: str | None = None,
        metadata: dict[str, MetadataValue] | None = None,
        timeout: float = 600.0,
    ) -> DocumentPublic:
        """Upload, then wait until that version is indexed or failed."""
        accepted = self.upload(source, filename=filename, doc_id=doc_id, metadata=metadata)
        return self.wait(accepted.doc_id, version=accepted.version, timeout=timeout)

    def get(self, doc_id: str) -> DocumentPublic:
        """A document's status (and error, counters, metadata)."""
        return self._do(_Calls.get(doc_id))

    status = get

    def list(self, *, status: DocumentStatus | None = None, limit: int = 100, offset: int = 0) -> DocumentList:
        return self._do(_Calls.list(status, limit, offset))

    def delete(self, doc_id: str) -> DocumentPublic:
        return self._do(_Calls.delete(doc_id))

    def wait(
        self, doc_id: str, *, version: int | None = None, timeout: float = 600.0, poll_s: float = 0.2
    ) -> DocumentPublic:
        """Poll until the document (at ``version`` or later) reaches a terminal status."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(doc_id)
            if _done(doc, version):
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{doc_id} still {doc.status.value} after {timeout:.0f}s")
            time.sleep(poll_s)

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        filter: dict[str, MetadataValue] | None = None,
        as_of: int | datetime | None = None,
        mode: SearchMode = "dense",
    ) -> SearchResponse:
        """Top-k chunks; ``mode`` is dense (embeddings), keyword (BM25) or hybrid (both, rank-fused);
        ``as_of`` (gold version or time) searches gold as it was then."""
        query_model = SearchQuery(query=query, top_k=top_k, filter=filter or {}, as_of=as_of, mode=mode)
        return self._do(_Calls.search(query_model))

    def rag_context(
        self,
        question: str,
        *,
        max_tokens: int = 1024,
        filter: dict[str, MetadataValue] | None = None,
        candidates: int = 30,
    ) -> RagContext:
        """The best chunks for ``question`` packed into ``max_tokens``, with numbered citations."""
        query = RagQuery(question=question, max_tokens=max_tokens, filter=filter or {}, candidates=candidates)
        return self._do(_Calls.rag_context(query))

    def stats(self) -> LakeStats:
        return self._do(_Calls.stats())

    def products(self, *, evaluate: bool = False) -> ProductList:
        return self._do(_Calls.products(evaluate))

    def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        return self._do(_Calls.metrics())

    def health(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False


class AsyncDoclakeClient:
    """Asynchronous client: the same calls and models as :class:`DoclakeClient`, awaited."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=_auth(api_key))
        if http is not None:
            self._http.headers.update(_auth(api_key))
        self._owns_http = http is None
        self.retry = retry or RetryPolicy()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncDoclakeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _do(self, call: _Call[T]) -> T:
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = await self._http.request(call.method, call.path, **call.kwargs)
            except httpx.ConnectError:
                if attempt == self.retry.max_retries:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.max_retries:
                await asyncio.sleep(self.retry.delay(attempt, response))
                continue
            return _parse(call, response)
        raise AssertionError("unreachable")

    async def upload(
        self,
        source: Source,
        *,
        filename: str | None = None,
        doc_id: str | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> UploadAccepted:
        return await self._do(_Calls.upload(source, filename=filename, doc_id=doc_id, metadata=metadata))

    async def upload_many(
        self,
        sources: list[Source | NamedBytes],
        *,
        doc_ids: list[str | None] | None = None,
        metadata: dict[str, MetadataValue] | None = None,
    ) -> BatchUploadAccepted:
        return await self._do(_Calls.upload_many(sources, doc_ids=doc_ids, metadata=metadata))

    async def upload_and_wait(
        self,
        source: Source,
        *,
        filename: str | None = None,
        doc_id: str | None = None,
        metadata: dict[str, MetadataValue] | None = None,
        timeout: float = 600.0,
    ) -> DocumentPublic:
        accepted = await self.upload(source, filename=filename, doc_id=doc_id, metadata=metadata)
        return await self.wait(accepted.doc_id, version=accepted.version, timeout=timeout)

    async def get(self, doc_id: str) -> DocumentPublic:
        return await self._do(_Calls.get(doc_id))

    status = get

    async def list(self, *, status: DocumentStatus | None = None, limit: int = 100, offset: int = 0) -> DocumentList:
        return await self._do(_Calls.list(status, limit, offset))

    async def delete(self, doc_id: str) -> DocumentPublic:
        return await self._do(_Calls.delete(doc_id))

    async def wait(
        self, doc_id: str, *, version: int | None = None, timeout: float = 600.0, poll_s: float = 0.2
    ) -> DocumentPublic:
        deadline = time.monotonic() + timeout
        while True:
            doc = await self.get(doc_id)
            if _done(doc, version):
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{doc_id} still {doc.status.value} after {timeout:.0f}s")
            await asyncio.sleep(poll_s)

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        filter: dict[str, MetadataValue] | None = None,
        as_of: int | datetime | None = None,
        mode: SearchMode = "dense",
    ) -> SearchResponse:
        query_model = SearchQuery(query=query, top_k=top_k, filter=filter or {}, as_of=as_of, mode=mode)
        return await self._do(_Calls.search(query_model))

    async def rag_context(
        self,
        question: str,
        *,
        max_tokens: int = 1024,
        filter: dict[str, MetadataValue] | None = None,
        candidates: int = 30,
    ) -> RagContext:
        query = RagQuery(question=question, max_tokens=max_tokens, filter=filter or {}, candidates=candidates)
        return await self._do(_Calls.rag_context(query))

    async def stats(self) -> LakeStats:
        return await self._do(_Calls.stats())

    async def products(self, *, evaluate: bool = False) -> ProductList:
        return await self._do(_Calls.products(evaluate))

    async def metrics(self) -> str:
        return await self._do(_Calls.metrics())

    async def health(self) -> bool:
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False
