"""An acl PATCH reaches search through the real update stream (Delta source), on the Spark engine too;
change events from producers may carry ``acl`` (absent keeps it, null clears it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from pipelines.embed.model import Embedder
from pipelines.settings import Settings
from pipelines.stream.changes import parse_event
from pipelines.stream.job import start_stream
from tests.pipelines.stream.helpers import assert_exactly_once
from tests.steps import process_one

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TS = "2026-11-22T10:00:00Z"


def test_events_carry_the_acl_in_both_shapes() -> None:
    base = {"event_id": "e1", "doc_id": "doc", "op": "patch_metadata", "version": 2, "ts": TS}
    kafka = parse_event(json.dumps({**base, "acl": ["group:sre"]}))
    delta = parse_event(json.dumps({**base, "acl_json": '["group:sre"]'}))
    assert kafka.event is not None and kafka.event == delta.event and kafka.event.acl == ["group:sre"]
    cleared = parse_event(json.dumps({**base, "acl_json": "null"})).event
    assert cleared is not None and cleared.sets_acl and cleared.acl is None
    kept = parse_event(json.dumps({**base, "op": "upsert", "text": "hi"})).event
    assert kept is not None and not kept.sets_acl
    assert parse_event(kept.to_json()).event == kept  # the stream's interchange keeps "absent" absent
    for bad in ([], ["*"], [""], "group:sre"):
        parsed = parse_event(json.dumps({**base, "acl": bad}))
        assert parsed.event is None and parsed.error and "acl" in parsed.error, bad


@pytest.mark.integration
def test_an_acl_patch_reaches_search_through_the_spark_engine(
    spark: SparkSession, settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    holder: dict[str, TestClient] = {}

    def inline(tenant: str, doc_id: str, version: int) -> None:
        process_one(holder["c"].app.state.runtime, tenant, doc_id, version)  # type: ignore[attr-defined]

    with TestClient(create_app(settings, enqueue=inline)) as client:
        holder["c"] = client
        rt = client.app.state.runtime  # type: ignore[attr-defined]
        files = {"file": ("fog.txt", b"Harbour fog horns sound every thirty seconds.")}
        client.post("/v1/documents", files=files, data={"doc_id": "fog", "acl": '["group:port"]'})
        client.post("/v1/documents", files={"file": ("tide.txt", b"Tide tables are printed weekly.")})
        search = {"query": "fog horn tide tables"}

        def seen(*principals: str) -> set[str]:
            body = {**search, "principals": list(principals)}
            return {h["doc_id"] for h in client.post("/v1/search", json=body).json()["results"]}

        tide = next(d for d in seen() if d != "fog")
        assert seen() == {tide} and seen("group:port") == {"fog", tide}
        assert client.patch("/v1/documents/fog", json={"acl": None}).status_code == 202
        assert client.patch(f"/v1/documents/{tide}", json={"acl": ["user:ana"]}).status_code == 202
        # driver_max_events=0: every batch goes through Spark's MERGEs of silver and gold.
        query = start_stream(
            spark, rt, source="delta", checkpoint=tmp_path / "checkpoint", trigger_s=0.2, driver_max_events=0
        )
        try:
            query.processAllAvailable()
        finally:
            query.stop()
        assert seen() == {"fog"} and seen("user:ana") == {"fog", tide}
        fog = client.get("/v1/documents/fog").json()
        assert (fog["acl"], fog["chunks_embedded"], fog["status"]) == (None, 0, "indexed")
        assert client.get(f"/v1/documents/{tide}").json()["acl"] == ["user:ana"]
        assert_exactly_once(rt)
