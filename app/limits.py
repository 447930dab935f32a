"""Request-body limit enforced on the byte stream, before anything is buffered.

Starlette's multipart parser spools a whole upload to disk before the route runs, so checking the
size in the route is too late for a 1 GB body: this middleware rejects an oversized Content-Length
up front and cuts a chunked (length-less) body off as soon as it passes the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        response_started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, response_started, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the app the client is gone: frameworks that parse forms
                    # turn exceptions into a 400, and would keep reading a stream that never ends.
                    rejected = True
                    if not response_started:
                        response_started = True
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return  # our 413 already went out; the app's answer to the "disconnect" is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Upload too large",
                "status": 413,
                "detail": f"the limit is {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})
