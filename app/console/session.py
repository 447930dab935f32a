"""Who is using the console: the API key kept in a cookie, checked by the API's own key ring.

A browser cannot attach a bearer header to a link, so the login form stores the key in an HttpOnly,
SameSite=Strict cookie and every page resolves it with ``app.deps.principal_for`` (the same check as
the API). Without configured keys the service binds loopback only and the console needs no login,
as the API does. Requests that change something must come from the console's own origin.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from app.auth import ADMIN, KeyRing
from app.deps import principal_for

__all__ = [
    "COOKIE",
    "ConsoleAdmin",
    "ConsolePrincipal",
    "ConsoleTenant",
    "Forbidden",
    "LoginRequired",
    "is_admin",
]

COOKIE = "doclake_console_key"


class LoginRequired(Exception):
    """No valid key: the console answers with its login page (see ``install_console``)."""


class Forbidden(Exception):
    """A valid key that may not do this: the console answers 403 with a page saying why (``install_console``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _principal(request: Request) -> str:
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("origin")
        # SameSite=Strict keeps the cookie off cross-site requests; this also covers keyless loopback use.
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise Forbidden("cross-origin request refused")
    who = principal_for(request, request.cookies.get(COOKIE))
    if who is None:
        raise LoginRequired
    return who


def _tenant(principal: Annotated[str, Depends(_principal)]) -> str:
    if principal == ADMIN:
        raise Forbidden("the admin key cannot read tenants' documents; log in with a tenant key")
    return principal


def _admin(request: Request, principal: Annotated[str, Depends(_principal)]) -> str:
    if not is_admin(request, principal):
        raise Forbidden("operator pages need the admin key")
    return principal


def is_admin(request: Request, principal: str) -> bool:
    """Whether this principal may open the operator pages (the admin key, or no keys at all)."""
    ring: KeyRing | None = getattr(request.app.state, "keyring", None)  # set by principal_for
    return principal == ADMIN or ring is None or not ring.enabled


ConsolePrincipal = Annotated[str, Depends(_principal)]
ConsoleTenant = Annotated[str, Depends(_tenant)]
ConsoleAdmin = Annotated[str, Depends(_admin)]
