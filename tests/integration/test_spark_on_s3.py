"""doclake's Spark paths on an S3 lake (SeaweedFS): the Spark reindex MERGE and Spark OPTIMIZE.

The session's S3A and LogStore confs are fixed when its JVM starts, so the work runs in a process
of its own (``s3_spark_smoke``) rather than on the shared local ``spark`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.lakehouse.spark import REPO
from tests.integration.servers import S3_KEY, S3_SECRET, seaweed_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_spark_reindex_and_optimize_on_an_s3_lake(tmp_path: Path) -> None:
    with seaweed_s3(tmp_path / "weed") as endpoint:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DOCLAKE_S3_ENDPOINT_URL": endpoint,
            "DOCLAKE_LAKE_URL": "s3://lake/smoke",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": "us-east-1",
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.integration.s3_spark_smoke", str(tmp_path / "data")],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["lake"] == "s3://lake/smoke" and result["gold_uri"].startswith("s3://lake/smoke/")
    assert result["documents"] == 2 and result["chunks"] == len(result["spark_gold"]) > 0
    assert result["engine"] == "spark"
    assert result["last_operation"] == {"silver.documents": "OPTIMIZE", "gold.chunks": "OPTIMIZE"}
    assert result["optimized"]["silver.documents"][1] == 1
