"""The SparkSession factory: Delta (and the Kafka source) on a local or remote master, a local or S3 lake.

The pyspark wheel ships neither Delta nor the Kafka source. ``scripts/jars.sh spark`` fetches them
from Maven Central once into the jars folder; the session then loads them from disk, so a second
start needs no network (and no Ivy resolution, which re-checks remote repositories).

A lake on S3 also needs ``scripts/jars.sh s3``: S3A and doclake's ``ConditionalPutLogStore``
(scripts/logstore). delta-spark's own S3 LogStore checks for a commit file and then writes it, which
lets a second writer (another Spark job, any delta-rs process) overwrite a commit; ours writes each
commit file with one ``If-None-Match: *`` PUT, as delta-rs does, so the store refuses the loser.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import ConfigError
from pipelines.settings import Settings
from pipelines.storage.location import is_remote, s3a_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["LOGSTORE_CLASS", "REPO", "ensure_jars", "get_spark", "jars_dir", "s3_spark_conf"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
_lock = threading.Lock()

LOGSTORE_CLASS = "doclake.ConditionalPutLogStore"
_LOGSTORE_SRC = REPO / "scripts" / "logstore" / "src"


def jars_dir(settings: Settings) -> Path:
    return (settings.jars_dir or REPO / ".cache" / "jars").resolve()


def _logstore_jar(folder: Path) -> Path:
    """The LogStore jar built from today's sources (named by their hash, as scripts/jars.sh does)."""
    digest = hashlib.sha256()
    for source in sorted(_LOGSTORE_SRC.rglob("*.java"), key=lambda p: str(p.relative_to(REPO))):
        digest.update(source.read_bytes())
    return folder / "libs" / f"doclake-logstore-{digest.hexdigest()[:12]}.jar"


def _complete(folder: Path, which: str) -> bool:
    if not (folder / ".complete").exists():
        return False
    return which != "s3" or _logstore_jar(folder).exists()


def ensure_jars(settings: Settings, which: str) -> list[Path]:
    """The jars of a set (``spark``, ``kafka`` or ``s3``), fetched with Maven (and built) on first use.

    Raises:
        ConfigError: the jars are missing and cannot be fetched (no Maven, no network, no JDK).
    """
    folder = jars_dir(settings) / which
    if not _complete(folder, which):
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


def s3_spark_conf(settings: Settings) -> dict[str, str]:
    """Spark confs for a lake on S3: S3A's endpoint and credentials, and the conditional-PUT LogStore."""
    return {
        **s3a_conf(settings),
        "spark.delta.logStore.s3a.impl": LOGSTORE_CLASS,
        "spark.delta.logStore.s3.impl": LOGSTORE_CLASS,
    }


def get_spark(settings: Settings, *, app_name: str = "doclake") -> SparkSession:
    """A SparkSession with Delta Lake and the Kafka source (one per process; reused if it exists).

    ``settings.spark_master`` picks local mode (default ``local[2]``) or a cluster. The driver binds
    127.0.0.1 in local mode: otherwise Spark picks a non-loopback address that may not route. When
    the lake is on S3 the session also gets S3A and the conditional-PUT LogStore; these are fixed when
    the JVM starts, so a session reused from earlier must have been built for the same lake.

    Raises:
        ConfigError: the jars cannot be fetched, or a reused session lacks the S3 LogStore.
    """
    from pyspark.sql import SparkSession

    with _lock:
        remote = is_remote(settings.lake_root)
        active = SparkSession.getActiveSession()
        if active is not None:
            if remote and active.conf.get("spark.delta.logStore.s3a.impl", None) != LOGSTORE_CLASS:
                raise ConfigError(
                    "the running SparkSession was built for a local lake; an S3 lake needs its own "
                    "(S3A and the conditional-PUT LogStore are set when the JVM starts)"
                )
            return active
        local = settings.spark_master.startswith("local")
        if local:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Executors must run this interpreter (the venv), not whatever ``python3`` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        jars = ensure_jars(settings, "spark")
        if remote:
            jars += ensure_jars(settings, "s3")
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
        if remote:
            for key, value in s3_spark_conf(settings).items():
                builder = builder.config(key, value)
        if local:
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        return spark
