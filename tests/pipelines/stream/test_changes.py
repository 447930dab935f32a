"""The DocumentUpdate contract, event parsing for the stream, and per-event planning (no Spark)."""

from __future__ import annotations

import json

from pipelines.contracts.documents import DocumentStatus
from pipelines.contracts.updates import DocumentUpdate
from pipelines.runtime import Runtime
from pipelines.stream.changes import parse_event
from pipelines.stream.plan import plan_update
from tests.steps import process_one, register_one

TS = "2026-11-22T10:00:00Z"


def _payload(**fields: object) -> str:
    return json.dumps(
        {"event_id": "e1", "doc_id": "doc", "op": "upsert", "version": 1, "text": "hi", "ts": TS, **fields}
    )


def test_valid_events_from_kafka_and_delta_shapes() -> None:
    kafka = parse_event(_payload(metadata={"team": "ops"}))
    assert kafka.error is None and kafka.event is not None and kafka.event.metadata == {"team": "ops"}
    delta = parse_event(_payload(metadata_json='{"team": "ops"}'))
    assert delta.event == kafka.event
    assert parse_event(_payload(op="delete", text=None)).error is None


def test_invalid_events_get_a_reason_and_a_stable_id() -> None:
    cases = {
        "not json": ("{oops", "not JSON"),
        "array": ("[1]", "not a JSON object"),
        "op": (_payload(op="rename"), "op"),
        "version": (_payload(version=0), "version"),
        "upsert without text": (_payload(text=""), "non-empty text"),
        "patch without metadata": (_payload(op="patch_metadata"), "needs metadata"),
        "naive ts": (_payload(ts="2026-11-22T10:00:00"), "ts"),
        "bad doc id": (_payload(doc_id="../x"), "doc_id"),
        "nested metadata": (_payload(metadata={"a": {"b": 1}}), "metadata"),
        "bad metadata_json": (_payload(metadata_json="{"), "metadata_json"),
        "unknown field": (_payload(colour="red"), "colour"),
    }
    for name, (payload, reason) in cases.items():
        parsed = parse_event(payload)
        assert parsed.event is None and parsed.error and reason in parsed.error, (name, parsed.error)
        assert parse_event(payload).event_id == parsed.event_id
    assert parse_event(_payload(version=0)).event_id == "e1"


def test_json_schema_export() -> None:
    schema = DocumentUpdate.model_json_schema()
    assert set(schema["required"]) == {"event_id", "doc_id", "op", "version", "ts"}
    assert schema["$defs"]["UpdateOp"]["enum"] == ["upsert", "delete", "patch_metadata"]


def test_plan_update_folds_a_batch_in_version_order(runtime: Runtime) -> None:
    rt = runtime
    result = register_one(rt, b"First paragraph.\n\nSecond paragraph.", filename="a.txt", doc_id="a")
    process_one(rt, "default", "a", result.version)

    def event(op: str, version: int, **kw: object) -> DocumentUpdate:
        fields = {"event_id": f"{op}{version}", "doc_id": "a", "op": op, "version": version, "ts": TS, **kw}
        return DocumentUpdate.model_validate(fields)

    assert plan_update(rt, [event("upsert", 1, text="old")]).action == "mirror"  # silver holds v1 (a re-run)
    patch = plan_update(rt, [event("patch_metadata", 2, metadata={"k": "v"})])
    assert patch.action == "apply" and patch.silver["status"] == DocumentStatus.embedding
    assert json.loads(patch.silver["metadata_json"]) == {"k": "v"}
    assert patch.silver["chunks_embedded"] == 0 and patch.silver["chunks_reused"] == len(patch.gold) > 0
    folded = plan_update(
        rt,
        [
            event("patch_metadata", 3, metadata={"k": "w"}),
            event("upsert", 2, text="First paragraph.\n\nA new second paragraph."),
            event("upsert", 1, text="stale"),
        ],
    )
    assert folded.action == "apply" and folded.version == 3 and "new second" in folded.silver["text"]
    assert json.loads(folded.silver["metadata_json"]) == {"k": "w"}
    assert 0 < folded.silver["chunks_embedded"] <= len(folded.gold)
    deleted = plan_update(rt, [event("delete", 2), event("patch_metadata", 3, metadata={"x": 1})])
    assert deleted.silver["status"] == DocumentStatus.deleted and deleted.version == 2
    assert [reason.split(":")[0] for _, reason in deleted.rejected] == ["not_found"]
    ghost = DocumentUpdate.model_validate(
        {"event_id": "m", "doc_id": "ghost", "op": "patch_metadata", "version": 1, "ts": TS, "metadata": {}}
    )
    ghost_plan = plan_update(rt, [ghost])
    assert ghost_plan.action == "skip" and ghost_plan.rejected[0][0] == "m"


def test_cli_exports_the_contract_and_nothing_starts_a_jvm() -> None:
    import subprocess
    import sys

    from typer.testing import CliRunner

    from app.cli import cli

    out = CliRunner().invoke(cli, ["schemas"])
    assert out.exit_code == 0 and "DocumentUpdate" in json.loads(out.stdout)
    code = "import sys, app.main, app.cli, pipelines.stream.job; assert 'pyspark' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
