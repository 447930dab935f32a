"""Two tenants' API keys and the admin key, and the API serving them with uploads processed inline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from pipelines.settings import Settings
from tests.steps import process_one

ALPHA = "alpha-key-0123456789"
BRAVO = "bravo-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def keyed_api(settings: Settings) -> Iterator[TestClient]:
    """The API with the keys of tenants ``alpha`` and ``bravo`` and the admin key; uploads processed inline."""
    settings.api_keys = SecretStr(f"{ALPHA}:alpha,{BRAVO}:bravo")
    settings.admin_key = SecretStr(ADMIN_KEY)

    def inline(tenant: str, doc_id: str, version: int) -> None:
        process_one(c.app.state.runtime, tenant, doc_id, version)  # type: ignore[attr-defined]

    with TestClient(create_app(settings, enqueue=inline)) as c:
        yield c
