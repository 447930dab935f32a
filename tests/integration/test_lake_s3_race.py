"""Spark and delta-rs commit to one Delta table on S3 at once, with no lock: nothing is lost.

Three delta-rs processes and one Spark process (doclake's conditional-PUT LogStore) each commit
appends and MERGEs to their own partition of one table on SeaweedFS, without any doclake lock: every
version race is settled by ``If-None-Match: *`` alone. The log must then hold versions 0..N with no
gap, each writer's commits exactly once, and every row. With delta-spark's default
``S3SingleDriverLogStore`` (check, then write) the same race loses delta-rs commits: Spark overwrites
a commit file another process wrote between its check and its PUT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.lakehouse.spark import REPO
from tests.integration.s3_race_worker import RACE
from tests.integration.servers import S3_KEY, S3_SECRET, seaweed_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELTA_RS_WRITERS = 3
WORKER = (sys.executable, "-m", "tests.integration.s3_race_worker")
COMMITS = 4  # Spark's commits; each delta-rs writer makes at least as many, and goes on while Spark runs


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with seaweed_s3(tmp_path / "weed") as endpoint:
        yield {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DOCLAKE_S3_ENDPOINT_URL": endpoint,
            "DOCLAKE_LAKE_URL": "s3://lake/race",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": "us-east-1",
        }


def _create_table(env: dict[str, str]) -> str:
    """The race table, created once before the race (partitioned by writer: no logical conflicts)."""
    code = (
        "import sys; from deltalake import DeltaTable; from pipelines.settings import Settings;"
        "from pipelines.storage.location import delta_options; from tests.integration.s3_race_worker import RACE;"
        "DeltaTable.create(sys.argv[1], RACE.schema, partition_by=['writer'],"
        " storage_options=delta_options(Settings()))"
    )
    uri = f"{env['DOCLAKE_LAKE_URL']}/{RACE.relpath}"
    subprocess.run([sys.executable, "-c", code, uri], env=env, check=True, cwd=REPO, timeout=120)
    return uri


def _log(env: dict[str, str], uri: str) -> tuple[list[int], Counter[str], Counter[str], list[tuple[str, int]]]:
    """(versions in the log, commits per engine, races lost per engine, every row), read in a fresh process.

    A commit lost a race (and was retried) when its version is past its read version + 1. Rows are read
    through delta-rs's own engine, as ``Lake.read`` does: ``to_pyarrow_table()`` on S3 hands reads
    to pyarrow's filesystem threads, and 1 exit in 4 then aborts ("terminate called without an
    active exception", deltalake 1.6.6) after the data was read correctly.
    """
    code = (
        "import json, sys; from deltalake import DeltaTable, QueryBuilder; from pipelines.settings import Settings;"
        "from pipelines.storage.location import delta_options;"
        "dt = DeltaTable(sys.argv[1], storage_options=delta_options(Settings()));"
        "h = dt.history();"
        "import pyarrow as pa;"
        "rows = pa.table(QueryBuilder().register('t', dt).execute('SELECT writer, seq FROM t').read_all()).to_pylist();"
        "print(json.dumps({'history': [{'version': c['version'], 'read': c.get('readVersion'),"
        " 'engine': c.get('engineInfo') or c.get('clientVersion')} for c in h],"
        " 'rows': [[r['writer'], r['seq']] for r in rows]}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, uri], env=env, cwd=REPO, timeout=120, capture_output=True, text=True
    )
    assert out.returncode == 0, f"reading the log failed ({out.returncode}): {out.stderr[-3000:]}"
    data = json.loads(out.stdout)
    versions = sorted(c["version"] for c in data["history"])
    commits = [c for c in data["history"] if c["version"] > 0]

    def engine(c: dict[str, object]) -> str:
        return "spark" if "Spark" in str(c["engine"]) else "delta-rs"

    engines = Counter(engine(c) for c in commits)
    raced = Counter(engine(c) for c in commits if c["read"] is not None and c["version"] > c["read"] + 1)
    return versions, engines, raced, [(w, s) for w, s in data["rows"]]


def test_spark_and_delta_rs_race_on_s3_without_locks(s3_env: dict[str, str], tmp_path: Path) -> None:
    uri = _create_table(s3_env)
    sync = tmp_path / "sync"
    sync.mkdir()
    writers = [("deltars", f"rs{i}") for i in range(DELTA_RS_WRITERS)] + [("spark", "spark")]
    procs = {
        name: subprocess.Popen(
            [*WORKER, role, name, str(COMMITS), s3_env["DOCLAKE_LAKE_URL"], str(sync)],
            env=s3_env,
            cwd=REPO,
            stdout=(tmp_path / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for role, name in writers
    }
    try:
        deadline = time.monotonic() + 180
        while not all((sync / f"{name}.ready").exists() for _, name in writers):
            failed = [n for n, p in procs.items() if p.poll() is not None]
            assert not failed, f"{failed} exited early: {(tmp_path / f'{failed[0]}.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "writers did not get ready"
            time.sleep(0.1)
        started = time.monotonic()
        (sync / "go").touch()
        for name, proc in procs.items():
            assert proc.wait(timeout=300) == 0, f"{name}: {(tmp_path / f'{name}.log').read_text()[-3000:]}"
        took = time.monotonic() - started
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()

    made = {name: int((sync / f"{name}.count").read_text()) for role, name in writers if role == "deltars"}
    made["spark"] = COMMITS
    total = sum(made.values())
    versions, engines, raced, rows = _log(s3_env, uri)
    print(
        f"{len(writers)} writers, {made} commits in {took:.1f} s; versions 0..{versions[-1]}; "
        f"per engine {dict(engines)}; commits that lost a race and were retried {dict(raced)}"
    )
    assert versions == list(range(total + 1)), "a gap or a duplicate in the log"
    assert engines == Counter({"delta-rs": total - COMMITS, "spark": COMMITS}), "a commit was overwritten"
    expected = {(name, seq) for name, count in made.items() for seq in range(count)}
    assert len(rows) == len(expected), "a row is missing or doubled"
    assert set(rows) == expected
