"""`doclake up` runs the update stream: a PATCH becomes visible to search filters through it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with embedded_stack(tmp_path_factory.mktemp("stream-stack"), env={"DOCLAKE_STREAM_ENABLED": "true"}) as running:
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
