"""Logging in to the console: the key is checked like an API key and kept in an HttpOnly cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import ADMIN
from app.console.render import templates
from app.console.session import COOKIE
from app.deps import principal_for

__all__ = ["router"]

router = APIRouter(prefix="/console")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_model=None)
def login(request: Request, key: Annotated[str, Form()]) -> Response:
    who = principal_for(request, key.strip())
    if who is None:
        return templates.TemplateResponse(
            request, "login.html", {"error": "unknown key"}, status_code=status.HTTP_401_UNAUTHORIZED
        )
    target = "/console/operations" if who == ADMIN else "/console/documents"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        key.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path="/console")
    return response
