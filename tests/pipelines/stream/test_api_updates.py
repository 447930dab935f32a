"""PATCH /v1/documents/{id} reaches search filters through the update stream (Delta source)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.settings import Settings
from pipelines.stream.job import start_stream
from tests.pipelines.stream.helpers import assert_exactly_once
from tests.steps import process_one

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


def test_patched_metadata_becomes_filterable(
    spark: SparkSession, settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    holder: dict[str, TestClient] = {}

    def inline(tenant: str, doc_id: str, version: int) -> None:
        process_one(holder["c"].app.state.runtime, tenant, doc_id, version)  # type: ignore[attr-defined]

    with TestClient(create_app(settings, enqueue=inline)) as client:
        holder["c"] = client
        rt = client.app.state.runtime  # type: ignore[attr-defined]
        client.post("/v1/documents", files={"file": ("fog.txt", b"Harbour fog horns sound every thirty seconds.")})
        doc_id = client.get("/v1/documents").json()["documents"][0]["doc_id"]
        search = {"query": "fog horn", "filter": {"port": "Bergen"}}
        assert client.post("/v1/search", json=search).json()["results"] == []

        patched = client.patch(f"/v1/documents/{doc_id}", json={"metadata": {"port": "Bergen"}})
        assert patched.status_code == 202
        query = start_stream(spark, rt, source="delta", checkpoint=tmp_path / "checkpoint", trigger_s=0.2)
        try:
            query.processAllAvailable()
        finally:
            query.stop()

        hits = client.post("/v1/search", json=search).json()["results"]
        assert [h["doc_id"] for h in hits] == [doc_id] and hits[0]["metadata"] == {"port": "Bergen"}
        doc = client.get(f"/v1/documents/{doc_id}").json()
        assert doc["version"] == 2 and doc["status"] == "indexed" and doc["chunks_embedded"] == 0
        assert_exactly_once(rt)
