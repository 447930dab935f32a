"""Python clients for doclake's HTTP API: :class:`DoclakeClient` (sync) and :class:`AsyncDoclakeClient`.

Both speak in the API's own models (``app.schemas``: ``UploadAccepted``, ``DocumentPublic``,
``SearchResponse``, ``RagContext`` …). Each call is written once, in ``app.client_calls``, and
carried out by ``app.client_exchange``; the two clients only send the requests and sleep the pauses
it asks for, so they cannot drift apart. Retries: a 429 or 503 answer, or a connection that could
not be made, is retried with exponential backoff and jitter (``Retry-After`` is honoured when the
server sends it); every other error raises :class:`DoclakeHTTPError` with the problem details at once.

Uploading by S3 URI is not offered yet: the API has no route that registers an object by URI until
the object-store issue lands (uploads send the bytes).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, get_args, overload

import httpx

from app import client_calls as calls
from app.client_calls import NamedBytes, Source
from app.client_exchange import DoclakeHTTPError, Operation, Reply, RetryPolicy, Run, Sleep, Step

__all__ = ["AsyncDoclakeClient", "DoclakeClient", "DoclakeHTTPError", "NamedBytes", "RetryPolicy", "Source"]

P = ParamSpec("P")
T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class _Method(Generic[P, T]):
    """A call of ``app.client_calls`` as a method of both clients, with the call's signature and docstring.

    On a :class:`DoclakeClient` it returns the call's result; on an :class:`AsyncDoclakeClient` it is
    a coroutine function (each client's ``_run`` carries the call out its own way).
    """

    def __init__(self, call: Callable[P, Operation[T]]) -> None:
        def sync(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            return client._run(call(*args, **kwargs))

        async def awaited(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            return await client._run(call(*args, **kwargs))

        signature = inspect.signature(call, eval_str=True)
        self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        signature = signature.replace(
            parameters=[self_, *signature.parameters.values()],
            return_annotation=get_args(signature.return_annotation)[2],  # Operation[T] -> T
        )
        for function in (sync, awaited):
            function.__doc__ = call.__doc__
            vars(function)["__signature__"] = signature
        self._sync, self._async = sync, awaited
        self._named = False

    def __set_name__(self, owner: type, name: str) -> None:
        if not self._named:  # one method under two names (get = status) keeps the first
            self._named = True
            for function in (self._sync, self._async):
                function.__name__, function.__qualname__ = name, f"{owner.__qualname__}.{name}"

    @overload
    def __get__(
        self, client: None, owner: type[AsyncDoclakeClient]
    ) -> Callable[Concatenate[AsyncDoclakeClient, P], Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, client: None, owner: type[DoclakeClient]) -> Callable[Concatenate[DoclakeClient, P], T]: ...

    @overload
    def __get__(self, client: AsyncDoclakeClient, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, client: DoclakeClient, owner: type) -> Callable[P, T]: ...

    def __get__(self, client: object, owner: type) -> Callable[..., Any]:
        function = self._async if issubclass(owner, AsyncDoclakeClient) else self._sync
        return function if client is None else types.MethodType(function, client)


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class _Client(Generic[H]):
    """What both clients share: how they connect, and every call of the API."""

    _new_http: Callable[..., H]  # the httpx client class a client opens when it is not given one

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        http: H | None = None,
    ) -> None:
        self._http: H = http or self._new_http(base_url=base_url, timeout=timeout, headers=_auth(api_key))
        if http is not None:
            self._http.headers.update(_auth(api_key))
        self._owns_http = http is None
        self.retry = retry or RetryPolicy()

    upload = _Method(calls.upload)
    upload_many = _Method(calls.upload_many)
    upload_and_wait = _Method(calls.upload_and_wait)
    get = status = _Method(calls.get_document)
    list = _Method(calls.list_documents)
    patch_metadata = _Method(calls.patch_metadata)
    set_acl = _Method(calls.set_acl)
    delete = _Method(calls.delete_document)
    wait = _Method(calls.wait)
    search = _Method(calls.search)
    rag_context = _Method(calls.rag_context)
    stats = _Method(calls.stats)
    products = _Method(calls.products)
    metrics = _Method(calls.metrics)


class DoclakeClient(_Client[httpx.Client]):
    """Synchronous client.

    Args:
        base_url: where the API listens.
        timeout: seconds per HTTP request.
        retry: the retry policy for 429/503 and refused connections.
        api_key: sent as ``Authorization: Bearer <key>`` when the service requires keys.
        http: an existing ``httpx.Client`` to send requests through (e.g. FastAPI's TestClient).
    """

    _new_http = httpx.Client

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> DoclakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def health(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def _run(self, operation: Operation[T]) -> T:
        run, reply = Run(operation, self.retry), None
        while (step := run.send(reply)) is not None:
            reply = self._step(step)
        return run.result

    def _step(self, step: Step) -> Reply:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.request(step.method, step.path, **step.kwargs)
        except httpx.ConnectError as e:
            return e


class AsyncDoclakeClient(_Client[httpx.AsyncClient]):
    """Asynchronous client: the same calls and models as :class:`DoclakeClient`, awaited
    (``http`` is an ``httpx.AsyncClient``)."""

    _new_http = httpx.AsyncClient

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncDoclakeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def health(self) -> bool:
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _run(self, operation: Operation[T]) -> T:
        run, reply = Run(operation, self.retry), None
        while (step := run.send(reply)) is not None:
            reply = await self._step(step)
        return run.result

    async def _step(self, step: Step) -> Reply:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.request(step.method, step.path, **step.kwargs)
        except httpx.ConnectError as e:
            return e
