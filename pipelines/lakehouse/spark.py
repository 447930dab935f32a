"""The SparkSession factory: Delta (and the Kafka source) on a local or remote master.

The pyspark wheel ships neither Delta nor the Kafka source. ``scripts/jars.sh spark`` fetches them
from Maven Central once into the jars folder; the session then loads them from disk, so a second
start needs no network (and no Ivy resolution, which re-checks remote repositories).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import ConfigError
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["REPO", "ensure_jars", "get_spark", "jars_dir"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
_lock = threading.Lock()


def jars_dir(settings: Settings) -> Path:
    return (settings.jars_dir or REPO / ".cache" / "jars").resolve()


def ensure_jars(settings: Settings, which: str) -> list[Path]:
    """The jars of a set (``spark`` or ``kafka``), fetched with Maven on first use.

    Raises:
        ConfigError: the jars are missing and cannot be fetched (no Maven, no network).
    """
    folder = jars_dir(settings) / which
    if not (folder / ".complete").exists():
        script = REPO / "scripts" / "jars.sh"
        env = {**os.environ, "DOCLAKE_JARS_DIR": str(jars_dir(settings))}
        log.info("fetching %s jars from Maven Central into %s", which, folder)
        done = subprocess.run(["bash", str(script), which], env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"cannot fetch the {which} jars: {done.stderr.strip()[-2000:]}")
    jars = sorted((folder / "libs").glob("*.jar"))
    if not jars:
        raise ConfigError(f"no jars in {folder / 'libs'}")
    return jars


def get_spark(settings: Settings, *, app_name: str = "doclake") -> SparkSession:
    """A SparkSession with Delta Lake and the Kafka source (one per process; reused if it exists).

    ``settings.spark_master`` picks local mode (default ``local[2]``) or a cluster. The driver binds
    127.0.0.1 in local mode: otherwise Spark picks a non-loopback address that may not route.
    """
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        local = settings.spark_master.startswith("local")
        if local:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Executors must run this interpreter (the venv), not whatever ``python3`` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        jars = ensure_jars(settings, "spark")
        builder = (
            SparkSession.builder.appName(app_name)
            .master(settings.spark_master)
            .config("spark.jars", ",".join(str(j) for j in jars))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.pyspark.python", sys.executable)
            # Micro-batches are small: a few partitions beat the default 200 shuffle tasks on 2 cores.
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.databricks.delta.snapshotPartitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            # Tables are shared with delta-rs writers: never upgrade their protocol behind their back.
            .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        )
        if local:
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        return spark
