"""`doclake up` runs the update stream: a PATCH becomes visible to search filters through it; and
Ctrl-C then stops the stack (the stream's JVM included) in order, within 20 s, without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own session, as a terminal starts it: the last test sends Ctrl-C to the whole process group.
    root = tmp_path_factory.mktemp("stream-stack")
    with embedded_stack(root, env={"DOCLAKE_STREAM_ENABLED": "true"}, own_session=True) as running:
        yield running


def test_patch_reaches_search_filters_through_the_stream(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "ferry.txt"
    path.write_text("The night ferry leaves the harbour at eleven and docks before dawn.")
    accepted = stack.client.upload(path)
    assert stack.client.wait(accepted.doc_id, version=accepted.version).status == "indexed"

    patched = stack.client.patch_metadata(accepted.doc_id, {"route": "north"})
    assert patched.metadata["route"] == "north" and patched.version > accepted.version
    # The stream's JVM may still be starting (tens of seconds on busy cores); then it applies within seconds.
    deadline = time.monotonic() + 420
    while True:
        hits = stack.client.search("night ferry", top_k=3, filter={"route": "north"}).results
        if hits:
            break
        assert time.monotonic() < deadline, stack.log.read_text(errors="replace")[-3000:]
        time.sleep(1.0)
    assert hits[0].doc_id == accepted.doc_id and hits[0].metadata == {"route": "north"}
    doc = stack.client.get(accepted.doc_id)
    assert doc.version == patched.version and doc.chunks_embedded == 0

    # Delete stays synchronous (search drops the document at once) and is recorded as an event too.
    assert stack.client.delete(accepted.doc_id).status == "deleted"
    assert not stack.client.search("night ferry", top_k=3, filter={"route": "north"}).results


def test_ctrl_c_stops_the_stack_in_order_without_tracebacks(stack: Stack) -> None:
    """Runs last in this module: it stops the module's stack."""
    deadline = time.monotonic() + 300
    while "update stream running" not in stack.log.read_text(errors="replace"):  # the stream's JVM is up
        assert time.monotonic() < deadline, stack.log.read_text(errors="replace")[-3000:]
        time.sleep(1.0)
    before = len(stack.log.read_bytes())

    started = time.monotonic()
    os.killpg(stack.proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: the whole process group
    try:
        code = stack.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"doclake up still running 60 s after Ctrl-C: {stack.log.read_text(errors='replace')[-3000:]}")
    took = time.monotonic() - started

    shutdown_log = stack.log.read_bytes()[before:].decode(errors="replace")
    assert code == 0, shutdown_log[-3000:]
    assert took < 20, f"stopped in {took:.1f} s: {shutdown_log[-3000:]}"
    # Before: the JVM got the SIGINT too and died under its driver, printing py4j tracebacks by the thousand.
    assert "Traceback" not in shutdown_log and "Exception" not in shutdown_log, shutdown_log[-5000:]
    assert len(shutdown_log.splitlines()) < 40, shutdown_log
    assert (
        shutdown_log.index("stopping stream")
        < shutdown_log.index("stopping worker")
        < shutdown_log.index("stopping api")
    ), shutdown_log
