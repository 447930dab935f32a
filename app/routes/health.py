"""/healthz: 200 once the tables exist and the query model is loaded; 503 while loading or when it failed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas import Health

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(request: Request) -> JSONResponse:
    ready: bool = bool(getattr(request.app.state, "model_ready", False))
    error: str | None = getattr(request.app.state, "model_error", None)
    body = Health(
        status="ok" if ready else ("failed" if error else "starting"),
        model_loaded=ready,
        documents_dir=str(request.app.state.runtime.settings.data_dir),
        error=error,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
