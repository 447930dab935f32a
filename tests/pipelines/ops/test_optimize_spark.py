"""``optimize`` through Spark: OPTIMIZE … ZORDER BY (tenant, doc_id) on tables delta-rs keeps writing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipelines.contracts.search import SearchQuery
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.ops.tables import OptimizeParams, history, optimize
from pipelines.runtime import Runtime
from pipelines.serve.search import search
from tests.steps import process_one, register_one

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


def _add(rt: Runtime, tenant: str, doc_id: str, text: str) -> None:
    reg = register_one(rt, text.encode(), filename=f"{doc_id}.md", tenant=tenant, doc_id=doc_id)
    assert process_one(rt, tenant, doc_id, reg.version).state == "done"


def test_spark_optimize_zorders_silver_and_gold(spark: SparkSession, runtime: Runtime) -> None:
    for i, tenant in enumerate(["acme", "globex", "acme"]):
        _add(runtime, tenant, f"doc{i}", f"# Doc {i}\n\nField report {i} about wind farms and turbine {i} blades.")
    gold_before = sorted(runtime.lake.read(CHUNKS).to_pylist(), key=lambda r: r["chunk_id"])

    report = optimize(runtime, OptimizeParams(tables=["silver", "gold", "updates"], engine="spark"))

    assert report.engine == "spark"
    by_table = {t.table: t for t in report.tables}
    for name in ("silver.documents", "gold.chunks"):
        t = by_table[name]
        assert t.zordered and t.files_before > 1 and t.files_after == 1, t
        (last,) = history(runtime, name, limit=1).entries
        assert last.operation == "OPTIMIZE" and "tenant" in last.parameters.get("zOrderBy", "")
    assert by_table["bronze.document_updates"].files_after == 0  # empty: nothing to do, no error
    assert sorted(runtime.lake.read(CHUNKS).to_pylist(), key=lambda r: r["chunk_id"]) == gold_before

    # delta-rs keeps writing and searching the tables Spark rewrote.
    _add(runtime, "acme", "doc9", "# Doc 9\n\nA late report about offshore substations.")
    assert runtime.lake.read(DOCUMENTS, "tenant = 'acme'").num_rows == 3
    assert search(runtime, SearchQuery(query="offshore substations", top_k=1), tenant="acme")[0].doc_id == "doc9"
    assert search(runtime, SearchQuery(query="turbine 1 blades", top_k=1), tenant="globex")[0].doc_id == "doc1"
