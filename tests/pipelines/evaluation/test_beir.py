"""BEIR golden sets from files: the real SciFact files load; every malformed input is a named error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.contracts.evals import EvalSet
from pipelines.errors import InvalidEvalSet, InvalidInput
from pipelines.evaluation.beir import load_beir

SCIFACT = Path(__file__).resolve().parents[3].parent / "shared" / "benchmarks" / "scifact"


def _files(tmp_path: Path, qrels: str, queries: list[object] | str) -> tuple[Path, Path]:
    q = tmp_path / "qrels.tsv"
    q.write_text(qrels)
    j = tmp_path / "queries.jsonl"
    j.write_text(queries if isinstance(queries, str) else "\n".join(json.dumps(x) for x in queries) + "\n")
    return q, j


GOOD_QUERIES = [{"_id": "q1", "text": "first"}, {"_id": 2, "text": "second"}, {"_id": "q3", "text": "unjudged"}]


def test_scifact_test_split_loads() -> None:
    if not SCIFACT.is_dir():
        pytest.skip(f"{SCIFACT} not found")
    golden = load_beir(SCIFACT / "qrels" / "test.tsv", SCIFACT / "queries.jsonl", name="scifact")
    assert len(golden.queries) == 300  # the judged test claims; queries.jsonl holds every split
    assert golden.judgements == 339
    assert set(golden.queries) == set(golden.qrels)


def test_a_small_set_keeps_judged_queries_and_hashes_its_content(tmp_path: Path) -> None:
    qrels, queries = _files(tmp_path, "query-id\tcorpus-id\tscore\nq1\tdA\t1\n2\tdB\t2\n2\tdC\t0\n", GOOD_QUERIES)
    golden = load_beir(qrels, queries)
    assert golden.name == "qrels"  # the qrels file's stem
    assert golden.queries == {"q1": "first", "2": "second"}  # q3 is not judged: left out
    assert golden.qrels == {"q1": {"dA": 1}, "2": {"dB": 2, "dC": 0}}
    renamed = load_beir(qrels, queries, name="other")
    assert renamed.sha256 == golden.sha256  # the content, not the name
    no_header, _ = _files(tmp_path, "q1\tdA\t1\n2\tdB\t2\n2\tdC\t0\n", GOOD_QUERIES)
    assert load_beir(no_header, queries).sha256 == golden.sha256
    changed, _ = _files(tmp_path, "q1\tdA\t1\n2\tdB\t1\n2\tdC\t0\n", GOOD_QUERIES)
    assert load_beir(changed, queries).sha256 != golden.sha256


@pytest.mark.parametrize(
    ("qrels", "queries", "message"),
    [
        ("query-id\tcorpus-id\tscore\n", GOOD_QUERIES, "no judgements"),
        ("", GOOD_QUERIES, "no judgements"),
        ("q1\tdA\t1\nq9\tdB\t1\n", GOOD_QUERIES, "qrels reference queries the queries do not have: q9"),
        ("q1\tdA\t0\n", GOOD_QUERIES, "no judgement marks a relevant document"),
        ("h1\th2\th3\nq1 dA 1\n", GOOD_QUERIES, "line 2: expected 3 tab-separated fields"),
        ("q1\tdA\t1\tx\n", GOOD_QUERIES, "line 1: expected 3 tab-separated fields"),
        ("q1\tdA\t1\nq1\tdB\thigh\n", GOOD_QUERIES, "line 2: score 'high' is not an integer"),
        ("q1\tdA\t1\nq1\tdA\t1\n", GOOD_QUERIES, "line 2: query q1 judges document dA twice"),
        ("q1\t\t1\n", GOOD_QUERIES, "line 1: empty query-id or corpus-id"),
        ("q1\tdA\t1\n", '{"_id": "q1", "text": "ok"}\n{not json\n', "queries.jsonl line 2: not JSON"),
        ("q1\tdA\t1\n", '["q1", "text"]\n', "line 1: expected a JSON object"),
        ("q1\tdA\t1\n", '{"text": "no id"}\n', "line 1: missing or empty _id"),
        ("q1\tdA\t1\n", '{"_id": "q1"}\n', "line 1: missing text"),
        ("q1\tdA\t1\n", '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', "query id q1 appears twice"),
        ("q1\tdA\t1\n", '{"_id": "q1", "text": "  "}\n', "queries without text: q1"),
        ("q1\tdA\t1\n", json.dumps({"_id": "q1", "text": "x" * 5000}) + "\n", "over 4096 characters"),
    ],
)
def test_malformed_sets_are_refused_with_the_reason(
    tmp_path: Path, qrels: str, queries: list[object] | str, message: str
) -> None:
    q, j = _files(tmp_path, qrels, queries)
    with pytest.raises(InvalidEvalSet) as err:
        load_beir(q, j)
    assert message in str(err.value)
    assert isinstance(err.value, InvalidInput) and err.value.code == "invalid_eval_set"


def test_missing_files_bad_bytes_and_bad_names(tmp_path: Path) -> None:
    q, j = _files(tmp_path, "q1\tdA\t1\n", GOOD_QUERIES)
    with pytest.raises(InvalidEvalSet, match="does not exist"):
        load_beir(tmp_path / "nope.tsv", j)
    (tmp_path / "latin1.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
    with pytest.raises(InvalidEvalSet, match="cannot read queries file"):
        load_beir(q, tmp_path / "latin1.jsonl")
    for bad in ("", "has space", "../up", "x" * 65):
        with pytest.raises(InvalidEvalSet, match="eval set name"):
            load_beir(q, j, name=bad)
    with pytest.raises(InvalidEvalSet, match="no judgements"):
        EvalSet.of("empty", {"q1": "x"}, {"q1": {}})
