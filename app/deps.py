"""FastAPI dependencies, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import ADMIN, KeyRing
from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = ["AdminDep", "RuntimeDep", "SettingsDep", "TenantDep", "principal_for"]


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _settings(request: Request) -> Settings:
    rt: Runtime = request.app.state.runtime
    return rt.settings


def _keyring(request: Request) -> KeyRing:
    ring: KeyRing | None = getattr(request.app.state, "keyring", None)
    if ring is None:
        ring = KeyRing.from_settings(_settings(request))
        request.app.state.keyring = ring
    return ring


_bearer = HTTPBearer(auto_error=False, description="An API key from DOCLAKE_API_KEYS (or the admin key).")


def principal_for(request: Request, key: str | None) -> str | None:
    """Whom a presented key stands for (a tenant or ADMIN); the default tenant when no keys are configured
    (the service then binds loopback only); None for a missing or unknown key. The console's cookie and
    the API's bearer header both go through here."""
    ring = _keyring(request)
    if not ring.enabled:
        return DEFAULT_TENANT
    return ring.principal(key) if key else None


def _principal(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    who = principal_for(request, credentials.credentials if credentials else None)
    if who is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


def _tenant(principal: Annotated[str, Depends(_principal)]) -> str:
    if principal == ADMIN:
        # The admin key operates the service; it does not read tenants' documents.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin key cannot act as a tenant")
    return principal


def _admin(request: Request, principal: Annotated[str, Depends(_principal)]) -> None:
    if _keyring(request).enabled and principal != ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs the admin key")


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[Settings, Depends(_settings)]
TenantDep = Annotated[str, Depends(_tenant)]
AdminDep = Annotated[None, Depends(_admin)]
