"""Errors as RFC 9457 problem details: every failure is JSON with a title, a status and a detail."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.schemas import Problem
from pipelines.errors import DocLakeError, DocumentNotFound, InvalidInput

__all__ = ["install_problem_handlers", "problem_response"]

log = logging.getLogger("doclake.api")

_MEDIA_TYPE = "application/problem+json"


def problem_response(
    status: int, title: str, detail: str | None = None, *, doc_id: str | None = None, code: str | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, doc_id=doc_id, code=code)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=_MEDIA_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem_response(422, "Invalid request", errors)

    @app.exception_handler(DocLakeError)
    async def _doclake(_: Request, exc: DocLakeError) -> JSONResponse:
        if isinstance(exc, DocumentNotFound):
            status, title = 404, "Document not found"
        elif isinstance(exc, InvalidInput):
            status, title = 422, "Invalid input"
        elif exc.retryable:
            status, title = 503, "Temporarily unavailable"
        else:
            status, title = 500, "Processing error"
        return problem_response(status, title, exc.message, doc_id=exc.doc_id, code=exc.code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "Internal error", f"{type(exc).__name__}")
