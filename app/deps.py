"""FastAPI dependencies, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipelines.contracts import DEFAULT_TENANT
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = ["RuntimeDep", "SettingsDep", "TenantDep"]


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _settings(request: Request) -> Settings:
    rt: Runtime = request.app.state.runtime
    return rt.settings


def _tenant() -> str:
    # Single-tenant until API keys map callers to tenants (auth issue); every route already takes one.
    return DEFAULT_TENANT


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[Settings, Depends(_settings)]
TenantDep = Annotated[str, Depends(_tenant)]
