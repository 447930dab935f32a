"""Reindex with the Spark engine: executors chunk and embed, Spark MERGEs the new index's gold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.search import SearchQuery
from pipelines.errors import InvalidInput
from pipelines.ingest.plan import plan_rows
from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.indexes import BASE_INDEX
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.ops.reconcile import ReconcileParams, reconcile
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from tests.steps import process_one, register_one

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DOCS = ("md/readability__README.md", "txt/unst__book-war-and-peace-1p.txt")


def test_spark_engine_builds_the_same_index_as_the_local_engine(
    spark: SparkSession, runtime: Runtime, corpus: Path
) -> None:
    for name in DOCS:
        path = corpus / name
        reg = register_one(runtime, path.read_bytes(), filename=path.name)
        assert process_one(runtime, "default", reg.doc_id, reg.version).state == "done"
    with pytest.raises(InvalidInput):
        reindex(runtime, ReindexParams(engine="spark"))  # in place: local only

    report = reindex(runtime, ReindexParams(chunk_max_tokens=128, engine="spark", switch=False))
    assert report.mode == "blue_green" and report.documents == 2 and report.remaining == 0
    assert report.embedded > 0 and not report.switched
    index = next(i for i in runtime.indexes() if i.index_id == report.index_id)
    spark_rows = runtime.lake.read(index.gold, columns=["chunk_id", "text_sha256", "chunker_id"]).to_pylist()
    assert {r["chunker_id"] for r in spark_rows} == {index.chunker.config_id}
    # The executors ran the pipeline's own planning: the rows are exactly the local engine's.
    for doc in {r["doc_id"] for r in runtime.lake.read(index.gold, columns=["doc_id"]).to_pylist()}:
        row = get_document(runtime.lake, "default", doc, with_text=True)
        assert row is not None
        local = plan_rows(runtime, row["tenant"], [row], index)[row["doc_id"]]
        built = runtime.lake.read(index.gold, f"doc_id = '{doc}'", columns=["chunk_id"]).column("chunk_id")
        assert sorted(r.chunk_id for r in local.rows) == sorted(built.to_pylist())
    assert reconcile(runtime, ReconcileParams(repair=False, index_id=index.index_id)).clean

    # A document changes before the switch: the next run rebuilds only it, and its MERGE drops the
    # chunks the new version no longer has.
    edited = (corpus / DOCS[0]).read_bytes().replace(b"Readability", b"Legibility")[:3000]
    reg = register_one(runtime, edited, filename="edited.md", doc_id=doc_of_first(runtime))
    assert process_one(runtime, "default", reg.doc_id, reg.version).state == "done"
    again = reindex(runtime, ReindexParams(chunk_max_tokens=128, engine="spark"))
    assert again.switched and again.skipped == 1 and again.documents == 1
    versions = runtime.lake.read(index.gold, f"doc_id = '{reg.doc_id}'", columns=["doc_version", "text"]).to_pylist()
    assert versions and {v["doc_version"] for v in versions} == {reg.version}
    assert not any("Readability" in v["text"] for v in versions)
    spark_rows = runtime.lake.read(index.gold, columns=["chunk_id"]).to_pylist()
    assert runtime.index(fresh=True).index_id == index.index_id != BASE_INDEX
    hits = search(runtime, SearchQuery(query="Prince Vasili and Anna Pavlovna", top_k=3))
    assert hits and {h.chunk_id for h in hits} <= {r["chunk_id"] for r in spark_rows}


def doc_of_first(rt: Runtime) -> str:
    """The doc id of the first corpus file (ids derive from content, so look it up by file name)."""
    rows = rt.lake.read(DOCUMENTS, "filename = 'readability__README.md'", columns=["doc_id"]).to_pylist()
    return str(rows[0]["doc_id"])
