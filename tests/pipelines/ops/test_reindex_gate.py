"""A reindex gated on measured quality (``--gate``): a worse index is refused and stays ``building``,
``--force`` switches it, an index as good switches; through the pipeline, the CLI and /v1/jobs.

Real delta-rs tables, LanceDB and the packaged model; the worse index is built with a BERT of random
weights (a local folder, loaded offline), which ranks the tiny set's documents by noise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from pipelines.errors import EvalSetNotFound, InvalidInput
from pipelines.evaluation.beir import load_beir
from pipelines.lakehouse.evals import list_eval_results, put_eval_set
from pipelines.lakehouse.indexes import BASE_INDEX, IndexState, get_index
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.runtime import Runtime
from tests import golden


def _with_tiny_set(rt: Runtime, folder: Path) -> None:
    golden.ingest(rt)
    put_eval_set(rt.lake, "default", load_beir(*golden.write_beir(folder), name="tiny"))


def _wait(api: TestClient, job_id: str) -> dict[str, object]:
    for _ in range(1200):
        record: dict[str, object] = api.get(f"/v1/jobs/{job_id}").json()
        if record["status"] != "running":
            return record
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_a_worse_index_is_refused_stays_building_and_force_switches_it(inline_api: TestClient, tmp_path: Path) -> None:
    rt: Runtime = inline_api.app.state.runtime  # type: ignore[attr-defined]
    _with_tiny_set(rt, tmp_path / "set")
    model = golden.random_model(tmp_path / "random-bert", rt.settings.resolved_model_path())
    build = ["--model-path", str(model), "--model-id", "random-bert", "--embed-backend", "torch"]
    env = {"DOCLAKE_DATA_DIR": str(rt.settings.data_dir)}

    refused = CliRunner().invoke(cli, ["reindex", *build, "--gate", "tiny", "--json"], env=env)
    assert refused.exit_code == 1, refused.output
    report = json.loads(refused.stdout)
    gate = report["gate"]
    assert report["mode"] == "blue_green" and not report["switched"] and report["remaining"] == 0
    assert gate["active_index_id"] == BASE_INDEX and gate["queries"] == 5 and gate["max_drop"] == 0.005
    assert gate["active_ndcg_at_10"] == pytest.approx(1.0)
    assert gate["new_ndcg_at_10"] < gate["active_ndcg_at_10"] - 0.005 and not gate["passed"]
    new_id = report["index_id"]
    candidate = get_index(rt.lake, new_id)
    assert candidate is not None and candidate.state == IndexState.building
    assert rt.index(fresh=True).index_id == BASE_INDEX
    # Both figures are recorded, under each index and its gold version.
    recorded = {r.index_id: r for r in list_eval_results(rt.lake, "default", eval_set="tiny")}
    assert set(recorded) == {BASE_INDEX, new_id}
    assert recorded[new_id].ndcg_at_10 == gate["new_ndcg_at_10"]
    assert recorded[new_id].gold_version == rt.lake.table(candidate.gold).version()

    # The human-readable run says why, on stderr, and exits 1; the building index can be evaluated alone.
    again = CliRunner().invoke(cli, ["reindex", *build, "--gate", "tiny"], env=env)
    assert again.exit_code == 1 and "quality gate refused" in again.output and "base stays active" in again.output
    # (eval's default mode is search's, hybrid; the gate compares vectors, in dense mode)
    alone = CliRunner().invoke(cli, ["eval", "--set", "tiny", "--index", new_id, "--mode", "dense", "--json"], env=env)
    assert alone.exit_code == 0 and json.loads(alone.stdout)["ndcg_at_10"] == gate["new_ndcg_at_10"]

    # The same params through /v1/jobs, with force: it switches, the figures still in the report.
    params = {
        "model_path": str(model),
        "model_id": "random-bert",
        "embed_backend": "torch",
        "gate": "tiny",
        "force": True,
    }
    job = inline_api.post("/v1/jobs", json={"kind": "reindex", "params": params})
    assert job.status_code == 202, job.text
    done = _wait(inline_api, job.json()["job_id"])
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert isinstance(result, dict)
    assert result["switched"] and result["index_id"] == new_id and result["skipped"] == len(golden.DOCS)
    assert not result["gate"]["passed"] and result["gate"]["forced"]
    assert result["gate"]["new_ndcg_at_10"] == gate["new_ndcg_at_10"]
    assert rt.index(fresh=True).index_id == new_id
    retired = get_index(rt.lake, BASE_INDEX)
    assert retired is not None and retired.state == IndexState.retired

    bad = inline_api.post("/v1/jobs", json={"kind": "reindex", "params": {"gate": "has space"}})
    assert bad.status_code == 422 and "gate" in bad.text


def test_an_index_as_good_passes_unless_an_improvement_is_demanded(runtime: Runtime, tmp_path: Path) -> None:
    _with_tiny_set(runtime, tmp_path)
    # One-sentence documents: a smaller chunk size gives the same chunks and vectors, so the same ranking.
    demanding = reindex(runtime, ReindexParams(chunk_max_tokens=128, gate="tiny", max_drop=-0.01))
    assert demanding.gate is not None and not demanding.switched
    assert demanding.gate.new_ndcg_at_10 == demanding.gate.active_ndcg_at_10 == pytest.approx(1.0)
    assert not demanding.gate.passed and not demanding.gate.forced
    assert runtime.index(fresh=True).index_id == BASE_INDEX

    passed = reindex(runtime, ReindexParams(chunk_max_tokens=128, gate="tiny"))  # resumes, default max drop
    assert passed.index_id == demanding.index_id and passed.skipped == len(golden.DOCS) and passed.embedded == 0
    assert passed.switched and passed.gate is not None and passed.gate.passed and not passed.gate.forced
    assert runtime.index(fresh=True).index_id == passed.index_id
    # Without a switch to decide (the index is active now) the gate has nothing to do.
    rerun = reindex(runtime, ReindexParams(chunk_max_tokens=128, gate="tiny"))
    assert rerun.mode == "in_place" and rerun.gate is None


def test_a_gate_on_an_unknown_set_fails_before_building_anything(runtime: Runtime) -> None:
    with pytest.raises(EvalSetNotFound, match="no eval set 'nope'"):
        reindex(runtime, ReindexParams(chunk_max_tokens=64, gate="nope"))
    assert [i.index_id for i in runtime.indexes()] == [BASE_INDEX]
    with pytest.raises(InvalidInput, match="vectors_only switches nothing"):
        reindex(runtime, ReindexParams(vectors_only=True, gate="nope"))
    refused = CliRunner().invoke(
        cli,
        ["reindex", "--chunk-max-tokens", "64", "--gate", "nope"],
        env={"DOCLAKE_DATA_DIR": str(runtime.settings.data_dir)},
    )
    assert refused.exit_code == 2 and "eval_set_not_found" in refused.output
