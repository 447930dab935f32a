"""The web console at /console: server-rendered pages (Jinja2) with vendored htmx.

Each page is a thin adapter over the JSON routes' own functions, so the console and the API have
one implementation. ``install_console`` adds its routes, static files and login redirect to an app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.console import documents, login, operations, search
from app.console.session import Forbidden, LoginRequired

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Serve the console under /console on ``app``."""
    app.mount("/console/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static")
    for module in (login, documents, search, operations):
        app.include_router(module.router, include_in_schema=False)

    @app.get("/console", include_in_schema=False)
    def console_home() -> RedirectResponse:
        return RedirectResponse("/console/documents", status_code=status.HTTP_303_SEE_OTHER)

    async def to_login(request: Request, exc: Exception) -> Response:
        if request.headers.get("hx-request"):
            # An htmx request cannot follow a redirect into a fragment: ask for a full page load.
            return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": "/console/login"})
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)

    app.add_exception_handler(LoginRequired, to_login)

    async def forbidden(request: Request, exc: Exception) -> Response:
        # A page, not the API's problem+json: a browser shows it, and offers to log in with another key.
        from app.console.render import templates

        reason = exc.reason if isinstance(exc, Forbidden) else "forbidden"
        if request.headers.get("hx-request"):
            return Response(reason, status_code=status.HTTP_403_FORBIDDEN, media_type="text/plain")
        return templates.TemplateResponse(
            request, "forbidden.html", {"reason": reason}, status_code=status.HTTP_403_FORBIDDEN
        )

    app.add_exception_handler(Forbidden, forbidden)
