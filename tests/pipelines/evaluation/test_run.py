"""`doclake eval`: a golden set run against a real lake (delta-rs, LanceDB, the real model), recorded in
meta.eval_results, listed by GET /v1/eval per tenant; bad input is a named error and CLI exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from pipelines.contracts.search import SearchQuery
from pipelines.embed.model import Embedder
from pipelines.errors import EvalSetNotFound, InvalidInput
from pipelines.evaluation.beir import load_beir
from pipelines.evaluation.metrics import best_chunk_ranking, mean_metrics
from pipelines.evaluation.run import EvalParams, evaluate
from pipelines.lakehouse.evals import list_eval_results, put_eval_set
from pipelines.lakehouse.schemas import EVAL_RESULTS
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from pipelines.settings import Settings
from tests import golden
from tests.keys import ADMIN_KEY, ALPHA, BRAVO, auth
from tests.keys import keyed_api as serve_keyed


@pytest.fixture()
def keyed_api(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    """The API with two tenants' keys and the admin key, processing uploads inline."""
    with serve_keyed(settings) as c:
        yield c


def test_results_are_recorded_per_index_and_gold_version_and_listed_per_tenant(
    keyed_api: TestClient, tmp_path: Path
) -> None:
    rt: Runtime = keyed_api.app.state.runtime  # type: ignore[attr-defined]
    golden.ingest(rt, "alpha")
    gold = rt.index().gold
    put_eval_set(rt.lake, "alpha", load_beir(*golden.write_beir(tmp_path), name="tiny"))

    result = evaluate(rt, EvalParams(eval_set="tiny", tenant="alpha"))
    # The figure is what the search the API runs answers, scored per document.
    runs = {
        q: best_chunk_ranking([h.doc_id for h in search(rt, SearchQuery(query=t, top_k=100), tenant="alpha")])
        for q, t in golden.QUERIES.items()
    }
    expected = mean_metrics(runs, {f"q-{d}": {d: 1} for d in golden.DOCS}, k=10)
    assert result.ndcg_at_10 == pytest.approx(expected["ndcg@10"]) and result.ndcg_at_10 == pytest.approx(1.0)
    assert result.recall_at_10 == pytest.approx(expected["recall@10"]) == 1.0
    # No mode given: the search API's default on this store (hybrid on LanceDB), recorded as such.
    assert (result.index_id, result.snapshot, result.mode, result.queries) == ("base", "live", "hybrid", 5)
    assert result.gold_version == rt.lake.table(gold).version()

    # A rerun of the same set on the same gold version replaces its row; as_of is its own row.
    again = evaluate(rt, EvalParams(eval_set="tiny", tenant="alpha"))
    assert again.ndcg_at_10 == result.ndcg_at_10
    assert rt.lake.read(EVAL_RESULTS, "tenant = 'alpha'").num_rows == 1
    empty = evaluate(rt, EvalParams(eval_set="tiny", tenant="alpha", as_of=0))  # gold before any document
    assert (empty.snapshot, empty.gold_version, empty.as_of, empty.ndcg_at_10) == ("as_of", 0, "0", 0.0)
    before_last = evaluate(rt, EvalParams(eval_set="tiny", tenant="alpha", as_of=result.gold_version))
    assert before_last.ndcg_at_10 == pytest.approx(1.0)  # exact search over the snapshot finds the same
    assert len(list_eval_results(rt.lake, "alpha")) == 3

    listed = keyed_api.get("/v1/eval", headers=auth(ALPHA))
    assert listed.status_code == 200, listed.text
    rows = listed.json()["results"]
    assert [r["snapshot"] for r in rows] == ["as_of", "as_of", "live"]  # newest first
    assert rows[-1]["ndcg_at_10"] == pytest.approx(1.0) and rows[-1]["gold_version"] == result.gold_version
    assert "tenant" not in rows[0]
    one = keyed_api.get("/v1/eval", params={"eval_set": "tiny", "index_id": "base", "limit": 1}, headers=auth(ALPHA))
    assert len(one.json()["results"]) == 1
    sets = keyed_api.get("/v1/eval/sets", headers=auth(ALPHA)).json()["sets"]
    assert [(s["name"], s["queries"], s["judgements"]) for s in sets] == [("tiny", 5, 5)]

    # Another tenant sees nothing of alpha's; an unknown set is a 404 problem, a bad name a 422.
    assert keyed_api.get("/v1/eval", headers=auth(BRAVO)).json() == {"results": []}
    assert keyed_api.get("/v1/eval/sets", headers=auth(BRAVO)).json() == {"sets": []}
    missing = keyed_api.get("/v1/eval", params={"eval_set": "tiny"}, headers=auth(BRAVO))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "eval_set_not_found"
    assert keyed_api.get("/v1/eval", params={"eval_set": "no such"}, headers=auth(ALPHA)).status_code == 422
    assert keyed_api.get("/v1/eval", headers=auth(ADMIN_KEY)).status_code == 403  # a tenant route
    assert keyed_api.get("/v1/eval").status_code == 401


def test_an_unknown_set_or_index_and_a_bad_as_of_are_named_errors(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(EvalSetNotFound):
        evaluate(runtime, EvalParams(eval_set="nope"))
    put_eval_set(runtime.lake, "default", load_beir(*golden.write_beir(tmp_path), name="tiny"))
    with pytest.raises(InvalidInput, match="no index 'inope'"):
        evaluate(runtime, EvalParams(eval_set="tiny", index_id="inope"))
    with pytest.raises(InvalidInput, match="cannot be read as of 99"):
        evaluate(runtime, EvalParams(eval_set="tiny", as_of=99))
    with pytest.raises(InvalidInput, match="use mode dense"):
        evaluate(runtime, EvalParams(eval_set="tiny", as_of=0, mode="hybrid"))
    assert list_eval_results(runtime.lake, "default") == []


def test_cli_imports_runs_lists_and_refuses_bad_input(runtime: Runtime, tmp_path: Path) -> None:
    golden.ingest(runtime)
    qrels, queries = golden.write_beir(tmp_path)
    env = {"DOCLAKE_DATA_DIR": str(runtime.settings.data_dir)}
    runner = CliRunner()

    imported = runner.invoke(cli, ["eval", "import", "tiny", "--qrels", str(qrels), "--queries", str(queries)], env=env)
    assert imported.exit_code == 0, imported.output
    assert "5 queries, 5 judgements" in imported.stdout
    ran = runner.invoke(cli, ["eval", "--set", "tiny", "--json"], env=env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["ndcg_at_10"] == pytest.approx(1.0)
    text = runner.invoke(cli, ["eval", "--set", "tiny", "--mode", "keyword"], env=env)
    assert text.exit_code == 0 and "tiny on index base" in text.stdout and "keyword" in text.stdout
    files = runner.invoke(cli, ["eval", "--qrels", str(qrels), "--queries", str(queries), "--no-record"], env=env)
    assert files.exit_code == 0 and "nDCG@10 1.0000" in files.stdout and "(not recorded)" in files.stdout
    listed = runner.invoke(cli, ["eval", "results", "--json"], env=env)
    assert listed.exit_code == 0
    assert sorted(r["mode"] for r in json.loads(listed.stdout)) == ["hybrid", "keyword"]  # --no-record stored nothing
    sets = runner.invoke(cli, ["eval", "sets"], env=env)
    assert sets.exit_code == 0 and sets.stdout.startswith("tiny")

    orphan, _ = golden.write_beir(tmp_path / "orphan", qrels="q-volcano\tvolcano\t1\nq-unknown\tbread\t1\n")
    header_only, _ = golden.write_beir(tmp_path / "empty", qrels="query-id\tcorpus-id\tscore\n")
    broken, _ = golden.write_beir(tmp_path / "broken", qrels="q-volcano volcano 1\n")
    refusals = {
        "eval_set_not_found: no eval set 'nope'": ["eval", "--set", "nope"],
        "qrels reference queries the queries do not have: q-unknown": [
            "eval", "import", "orphan", "--qrels", str(orphan), "--queries", str(queries)
        ],
        "holds no judgements": ["eval", "import", "empty", "--qrels", str(header_only), "--queries", str(queries)],
        "expected 3 tab-separated fields": ["eval", "--qrels", str(broken), "--queries", str(queries)],
        "does not exist": ["eval", "import", "x", "--qrels", str(tmp_path / "none.tsv"), "--queries", str(queries)],
        "qrels and queries files go together": ["eval", "--qrels", str(qrels)],
        "no index 'inope'": ["eval", "--set", "tiny", "--index", "inope"],
        "cannot be read as of 999": ["eval", "--set", "tiny", "--as-of", "999"],
        "neither a gold version nor an ISO time": ["eval", "--set", "tiny", "--as-of", "yesterday"],
        "use mode dense": ["eval", "--set", "tiny", "--as-of", "0", "--mode", "hybrid"],
        "name a stored set with --set": ["eval"],
    }  # fmt: skip
    for message, argv in refusals.items():
        refused = runner.invoke(cli, argv, env=env)
        assert refused.exit_code == 2 and message in refused.output, (argv, refused.output)
    # The refused imports stored nothing; the good set is unchanged.
    sets = runner.invoke(cli, ["eval", "sets", "--json"], env=env)
    assert [s["name"] for s in json.loads(sets.stdout)] == ["tiny"]
