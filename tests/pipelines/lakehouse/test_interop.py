"""One lake, two engines: Spark + delta-spark and delta-rs read and write each other's tables."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.lakehouse.documents import get_document
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.lakehouse.spark_commits import retry_conflicts
from pipelines.lakehouse.writer import put_versions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.integration


def _doc(doc_id: str, version: int = 1, status: str = "queued") -> dict[str, object]:
    return {"tenant": "t", "doc_id": doc_id, "version": version, "status": status, "metadata_json": "{}"}


def _spark_merge(spark: SparkSession, path: str, source: DataFrame) -> None:
    from delta.tables import DeltaTable as SparkDeltaTable

    def run() -> None:
        (
            SparkDeltaTable.forPath(spark, path)
            .alias("t")
            .merge(source.alias("s"), "t.tenant = s.tenant AND t.doc_id = s.doc_id")
            .whenMatchedUpdate(condition="s.version > t.version", set={"version": "s.version", "status": "s.status"})
            .whenNotMatchedInsert(
                values={"tenant": "s.tenant", "doc_id": "s.doc_id", "version": "s.version", "status": "s.status"}
            )
            .execute()
        )

    retry_conflicts(run, what="test MERGE")


def test_spark_merges_a_table_written_by_delta_rs(spark: SparkSession, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.ensure_tables()
    put_versions(lake, [_doc("a")])
    put_versions(lake, [_doc("b")])
    source = spark.createDataFrame(
        [("t", "a", 2, "indexed"), ("t", "c", 1, "queued")], "tenant string, doc_id string, version long, status string"
    )
    _spark_merge(spark, lake.uri(DOCUMENTS), source)

    a, b, c = (get_document(lake, "t", d) for d in "abc")
    assert a is not None and a["version"] == 2 and a["status"] == "indexed"
    assert b is not None and b["version"] == 1 and c is not None and c["status"] == "queued"
    put_versions(lake, [_doc("a", 3, "embedding")])  # delta-rs keeps writing after Spark's commit
    assert spark.read.format("delta").load(lake.uri(DOCUMENTS)).filter("doc_id = 'a'").first()["version"] == 3  # type: ignore[index]


def test_delta_rs_writes_a_table_written_by_spark(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "spark_table")
    spark.createDataFrame([("t", "x", 1)], "tenant string, doc_id string, version long").write.format("delta").save(
        path
    )
    rows = pa.table(
        {"tenant": ["t"], "doc_id": ["y"], "version": [1]},
        schema=pa.schema([("tenant", pa.string()), ("doc_id", pa.string()), ("version", pa.int64())]),
    )
    write_deltalake(path, rows, mode="append")
    DeltaTable(path).merge(
        pa.table({"doc_id": ["x"], "version": [5]}), predicate="t.doc_id = s.doc_id", source_alias="s", target_alias="t"
    ).when_matched_update(updates={"version": "s.version"}).execute()

    read = {r["doc_id"]: r["version"] for r in spark.read.format("delta").load(path).collect()}
    assert read == {"x": 5, "y": 1}
    assert DeltaTable(path).to_pyarrow_table().num_rows == 2


def test_concurrent_commits_from_both_engines_lose_nothing(spark: SparkSession, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.ensure_tables()
    errors: list[BaseException] = []

    def delta_rs_writer() -> None:
        try:
            for i in range(20):
                put_versions(lake, [_doc(f"rs{i}")])
        except BaseException as e:
            errors.append(e)

    writer = threading.Thread(target=delta_rs_writer)
    writer.start()
    for i in range(8):
        source = spark.createDataFrame(
            [("t", f"spark{i}", 1, "queued")], "tenant string, doc_id string, version long, status string"
        )
        _spark_merge(spark, lake.uri(DOCUMENTS), source)
    writer.join()
    assert not errors
    ids = {r["doc_id"] for r in lake.read(DOCUMENTS, columns=["doc_id"]).to_pylist()}
    assert ids == {f"rs{i}" for i in range(20)} | {f"spark{i}" for i in range(8)}
    assert spark.read.format("delta").load(lake.uri(DOCUMENTS)).count() == 28
