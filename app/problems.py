"""Errors as RFC 9457 problem details: every failure is JSON with a title, a status and a detail."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.schemas import Problem
from pipelines.errors import DocLakeError, DocumentNotFound, EvalSetNotFound, InvalidInput

__all__ = ["install_problem_handlers", "problem_response"]

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

log = logging.getLogger("doclake.api")

_MEDIA_TYPE = "application/problem+json"


def problem_response(
    status: int, title: str, detail: str | None = None, *, doc_id: str | None = None, code: str | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, doc_id=doc_id, code=code)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=_MEDIA_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    _document_problems(app)

    # Starlette's class, not FastAPI's subclass: body-parsing errors are raised as the former.
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem_response(422, "Invalid request", errors)

    @app.exception_handler(DocLakeError)
    async def _doclake(_: Request, exc: DocLakeError) -> JSONResponse:
        if isinstance(exc, DocumentNotFound):
            status, title = 404, "Document not found"
        elif isinstance(exc, EvalSetNotFound):
            status, title = 404, "Eval set not found"
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


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above really send for errors.

    FastAPI documents error responses as application/json (and 422 as its own validation schema);
    ours are problem details under application/problem+json, so every 4xx/5xx is rewritten to that,
    and the 401/500 every route can answer are declared too.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                for code in ("422", "500"):
                    responses.setdefault(code, {"description": "Problem details"})
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": "The body could not be parsed"})
                if any(p.get("in") == "header" for p in operation.get("parameters", [])) or operation.get("security"):
                    responses.setdefault("401", {"description": "Missing or wrong API key"})
                    responses.setdefault("403", {"description": "Key not allowed here"})
                for code, response in responses.items():
                    if code[:1] in ("4", "5"):
                        response["content"] = {_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
