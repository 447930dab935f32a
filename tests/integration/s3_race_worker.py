"""One writer of the S3 commit race (``test_lake_s3_race``), run as its own process.

    python -m tests.integration.s3_race_worker deltars|spark <writer> <commits> <lake-root> <sync-dir>

Settings (endpoint, credentials, lake URL) come from the environment. The writer gets ready (imports,
a JVM for Spark), writes ``<writer>.ready`` into the sync folder, waits for ``go``, then commits
``commits`` times to its own partition (``writer``), alternating appends and insert-only MERGEs,
with no doclake lock: only the store's conditional PUT keeps the versions apart. Rows: one per
commit, ``(writer, seq)``. A delta-rs writer goes on committing (short random pauses) until the Spark
writer is done, so the slow Spark commits always meet concurrent ones; it writes how many it made
into ``<writer>.count``.

``DOCLAKE_RACE_LOGSTORE`` swaps Spark's LogStore class (to show by hand what the default
``io.delta.storage.S3SingleDriverLogStore`` does in the same race).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pipelines.lakehouse.schemas import TableSpec
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SCHEMA = pa.schema([pa.field("writer", pa.string(), nullable=False), pa.field("seq", pa.int64(), nullable=False)])
RACE = TableSpec("race.t", SCHEMA, ("writer", "seq"))  # at <lake root>/race/t, partitioned by writer


def _wait(sync: Path, writer: str) -> None:
    (sync / f"{writer}.ready").touch()
    deadline = time.monotonic() + 300
    while not (sync / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{writer}: no go signal")
        time.sleep(0.02)


def _deltars(writer: str, commits: int, root: str, sync: Path) -> None:
    from pipelines.lakehouse.lake import Lake
    from pipelines.storage.location import delta_options
    from pipelines.storage.locks import NoLocks

    lake = Lake(root, locks=NoLocks(), storage_options=delta_options(Settings()))
    lake.table(RACE)
    _wait(sync, writer)
    seq = 0
    while seq < commits or not (sync / "spark.done").exists():
        rows = pa.table({"writer": [writer], "seq": [seq]}, schema=SCHEMA)
        if seq % 2 == 0:
            lake.append(RACE, rows)
        else:
            lake.merge(
                RACE,
                rows,
                predicate=f"t.writer = '{writer}' AND t.writer = s.writer AND t.seq = s.seq",
                build=lambda m: m.when_not_matched_insert_all(),
            )
        seq += 1
        time.sleep(random.uniform(0.3, 1.2))  # paced: 2 cores are shared with the Spark JVM
    (sync / f"{writer}.count").write_text(str(seq))


def _spark(writer: str, commits: int, root: str, sync: Path) -> None:
    from delta.tables import DeltaTable

    import pipelines.lakehouse.spark as spark_module
    from pipelines.lakehouse.spark_commits import retry_conflicts
    from pipelines.storage.location import spark_uri

    if os.environ.get("DOCLAKE_RACE_LOGSTORE"):
        spark_module.LOGSTORE_CLASS = os.environ["DOCLAKE_RACE_LOGSTORE"]
    began = time.monotonic()
    spark = spark_module.get_spark(Settings(), app_name=f"race-{writer}")
    print(f"session: {time.monotonic() - began:.2f} s", flush=True)
    path = spark_uri(f"{root}/{RACE.relpath}")
    DeltaTable.forPath(spark, path).toDF().count()  # warm: S3A client, LogStore, snapshot
    print(f"ready: {time.monotonic() - began:.2f} s", flush=True)
    _wait(sync, writer)
    for seq in range(commits):
        began = time.monotonic()
        rows = spark.createDataFrame([(writer, seq)], "writer string, seq long")
        condition = f"t.writer = '{writer}' AND t.writer = s.writer AND t.seq = s.seq"

        def append(rows: DataFrame = rows) -> None:
            rows.write.format("delta").mode("append").save(path)

        def merge(rows: DataFrame = rows, condition: str = condition) -> None:
            DeltaTable.forPath(spark, path).alias("t").merge(
                rows.alias("s"), condition
            ).whenNotMatchedInsertAll().execute()

        retry_conflicts(append if seq % 2 == 0 else merge, what="race commit")
        print(f"commit {seq}: {time.monotonic() - began:.2f} s", flush=True)
    began = time.monotonic()
    spark.stop()
    print(f"stop: {time.monotonic() - began:.2f} s", flush=True)


def main(argv: list[str]) -> None:
    role, writer, commits, root, sync = argv
    run = _spark if role == "spark" else _deltars
    run(writer, int(commits), root, Path(sync))
    (Path(sync) / f"{writer}.done").touch()


if __name__ == "__main__":
    main(sys.argv[1:])
