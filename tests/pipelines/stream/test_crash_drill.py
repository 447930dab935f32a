"""Crash drill: SIGKILL the stream process mid-batch, restart it, and nothing is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.schemas import CHUNKS
from pipelines.runtime import Runtime
from pipelines.stream.batch import HOLD_ENV
from pipelines.stream.changes import append_updates
from tests.pipelines.stream.helpers import assert_exactly_once, event, search_docs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
TOPICS = ["tides and the moon", "sourdough starters", "volcanic soil", "chess openings", "bee colonies"]


def _start(rt: Runtime, *, hold: str | None, log: Path, driver_max: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DOCLAKE_DATA_DIR": str(rt.settings.data_dir),
        "DOCLAKE_STREAM_TRIGGER_S": "0.5",
        "DOCLAKE_STREAM_DRIVER_MAX_EVENTS": str(driver_max),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop(HOLD_ENV, None)
    if hold:
        env[HOLD_ENV] = hold
    with log.open("ab") as out:
        # Own process group: the SIGKILL below takes the Python driver and its JVM down together.
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "stream", "--source", "delta"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(predicate: object, proc: subprocess.Popen[bytes], log: Path, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"stream exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


# Both engines: the batch committed by delta-rs on the driver, and by Spark MERGEs.
@pytest.mark.parametrize("driver_max", [200, 0], ids=["driver", "spark"])
def test_sigkill_mid_batch_then_restart_applies_everything_once(
    runtime: Runtime, tmp_path: Path, driver_max: int
) -> None:
    rt = runtime
    log = tmp_path / "stream.log"
    events = [
        event(f"doc{i}", "upsert", 1, text=f"Notes on {topic}.\n\nA second paragraph about {topic}.")
        for i, topic in enumerate(TOPICS)
    ]
    append_updates(rt.lake, events)

    held = rt.settings.stream_dir / "held-gold"
    proc = _start(rt, hold="gold", log=log, driver_max=driver_max)
    try:
        _wait(held.exists, proc, log, timeout=600, what="the batch to reach the hold point")
        # Mid-batch: gold is committed, silver and the vector store are not.
        assert rt.lake.read(CHUNKS).num_rows > 0
        assert get_document(rt.lake, "default", "doc0") is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    def all_indexed() -> bool:
        docs = [get_document(rt.lake, "default", e.doc_id) for e in events]
        return all(d is not None and d["status"] == DocumentStatus.indexed for d in docs)

    proc = _start(rt, hold=None, log=log, driver_max=driver_max)
    try:
        _wait(all_indexed, proc, log, timeout=600, what="every event to be applied after the restart")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    assert_exactly_once(rt)
    for i, topic in enumerate(TOPICS):
        assert search_docs(rt, topic)[0] == f"doc{i}"
    # The re-run batch found its gold MERGE already committed (the Delta txn of app id + batch id)
    # and wrote it once, whichever engine committed it.
    history = DeltaTable(rt.lake.uri(CHUNKS)).history()
    merges = [h for h in history if h.get("operation") == "MERGE"]
    assert len(merges) == 1, merges
    assert ("Spark" in str(merges[0].get("engineInfo"))) == (driver_max == 0), merges
