"""doclake's Spark paths on a lake in S3, run as its own process (``test_spark_on_s3``).

    python -m tests.integration.s3_spark_smoke <data-dir>

Settings (``DOCLAKE_LAKE_URL=s3://…``, endpoint, credentials) come from the environment; the
SparkSession this process starts is the S3 one (S3A + the conditional-PUT LogStore). It processes
two documents with delta-rs, rebuilds them into a new index with the Spark engine of reindex
(``spark_replace_chunks`` on S3), OPTIMIZEs silver and the new gold with Spark
(``spark_optimize_table``), and prints what it found as JSON for the test to check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.ops.reindex import ReindexParams, reindex
from pipelines.ops.tables import OptimizeParams, history, optimize
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from tests.steps import process_one, register_one

TEXTS = {
    "doc0": "# Wind\n\nField report about wind farms and turbine blades in the North Sea.",
    "doc1": "# Grid\n\nA report about offshore substations and the cables that reach the coast.",
}


def main(data_dir: str) -> None:
    rt = Runtime.from_settings(Settings(data_dir=Path(data_dir), extract_timeout_s=60, extract_memory_mb=4000))
    assert rt.lake.root.startswith("s3://"), rt.lake.root
    for doc_id, text in TEXTS.items():
        reg = register_one(rt, text.encode(), filename=f"{doc_id}.md", doc_id=doc_id)
        assert process_one(rt, "default", doc_id, reg.version).state == "done"

    built = reindex(rt, ReindexParams(chunk_max_tokens=128, engine="spark", switch=False))
    index = next(i for i in rt.indexes() if i.index_id == built.index_id)
    spark_gold = sorted(rt.lake.read(index.gold, columns=["chunk_id"]).column("chunk_id").to_pylist())

    report = optimize(rt, OptimizeParams(tables=["silver", "gold"], engine="spark"))
    last = {name: history(rt, name, limit=1).entries[0].operation for name in (DOCUMENTS.name, CHUNKS.name)}
    print(
        "RESULT "
        + json.dumps(
            {
                "lake": rt.lake.root,
                "documents": built.documents,
                "chunks": built.chunks,
                "spark_gold": spark_gold,
                "gold_uri": rt.lake.uri(index.gold),
                "optimized": {t.table: [t.files_before, t.files_after] for t in report.tables},
                "last_operation": last,
                "engine": report.engine,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1])
