"""The console's Jinja2 environment: templates and filters shared by its pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.console.session import is_admin

__all__ = ["page", "templates"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _pages(start: int | None, end: int | None) -> str:
    if start is None:
        return "—"
    return f"p. {start}" if end in (None, start) else f"pp. {start}-{end}"


templates.env.filters["when"] = _when
templates.env.filters["pages"] = _pages


def page(request: Request, name: str, principal: str, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (who is logged in, which links to show)."""
    return templates.TemplateResponse(
        request, name, {"principal": principal, "operator": is_admin(request, principal), **context}
    )
