"""Local path or object store: the one check, and the options each engine needs for an S3 root.

delta-rs, LanceDB, Spark's S3A and boto3 each spell the same endpoint, region and credentials
differently; they are derived here from doclake's settings and the usual ``AWS_*`` variables, so
every engine talks to the same bucket the same way.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from pipelines.settings import Settings

__all__ = [
    "check_remote_scheme",
    "delta_options",
    "embed_processes",
    "is_remote",
    "lance_options",
    "missing_files",
    "s3_client",
    "s3a_conf",
    "spark_uri",
    "split_s3",
    "stored_size",
]


def is_remote(uri: str | Path) -> bool:
    """True for an object-store URI (``s3://…``); False for a local path or ``file://``.

    Every "is this a local lake" decision goes through here, so a new scheme is handled once.
    """
    text = str(uri)
    return "://" in text and not text.startswith("file://")


def embed_processes(settings: Settings) -> int:
    """Embedding worker processes for `doclake up`: ``embed_concurrency``, else 2 when the lake or the vectors
    are remote, else 1.

    Measured with `bench/s3_lake.py` (4 runs each): one embedding process on the S3 lake left 5.2-5.9 core-s
    of the two cores idle while its commits waited on the server and ingested 57-58 chunks/s; two left
    2.0-3.8 idle and ingested 60-67. On a local lake a second process changed nothing (the cores are full).
    """
    if settings.embed_concurrency is not None:
        return settings.embed_concurrency
    return 2 if is_remote(settings.lake_root) or is_remote(settings.vectors_root) else 1


def spark_uri(uri: str) -> str:
    """The URI Spark (Hadoop) reads a table at: ``s3://`` becomes ``s3a://``, anything else is unchanged.

    Hadoop names its S3 file system ``s3a``; every Spark read, write and SQL path goes through here.
    """
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def check_remote_scheme(uri: str) -> None:
    """Refuse object stores doclake does not commit to safely (only S3 and S3-compatible ones).

    Raises:
        ConfigError: a remote URI with another scheme (gs://, az://, …).
    """
    if is_remote(uri) and not uri.startswith("s3://"):
        raise ConfigError(f"{uri}: only s3:// (AWS or an S3-compatible server) is supported for the lake and vectors")


def split_s3(uri: str) -> tuple[str, str]:
    """("bucket", "prefix") of an ``s3://bucket/prefix`` URI (prefix without slashes at its ends)."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"not an s3:// uri: {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket")
    return bucket, prefix.strip("/")


def _endpoint(settings: Settings) -> str | None:
    return settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _credentials() -> dict[str, str]:
    names = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY", "token": "AWS_SESSION_TOKEN"}
    return {k: os.environ[v] for k, v in names.items() if os.environ.get(v)}


# The object_store crate's option names, which delta-rs spells in upper case and LanceDB in lower case.
_OBJECT_STORE_NAMES = {
    "region": "aws_region",
    "endpoint": "aws_endpoint",
    "allow_http": "allow_http",
    "key": "aws_access_key_id",
    "secret": "aws_secret_access_key",
    "token": "aws_session_token",
}


def _object_store_options(settings: Settings) -> dict[str, str]:
    """Region, endpoint and credentials as object_store options (lower case)."""
    values = {"region": settings.s3_region, **_credentials()}
    endpoint = _endpoint(settings)
    if endpoint:
        values["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            values["allow_http"] = "true"
    return {_OBJECT_STORE_NAMES[k]: v for k, v in values.items()}


def delta_options(settings: Settings) -> dict[str, str]:
    """delta-rs storage options. No locking provider: deltalake ≥ 1.6.1 commits with conditional PUT."""
    options = {k.upper(): v for k, v in _object_store_options(settings).items()}
    # delta-rs reads the endpoint as AWS_ENDPOINT_URL and plain HTTP as AWS_ALLOW_HTTP.
    if "AWS_ENDPOINT" in options:
        options["AWS_ENDPOINT_URL"] = options.pop("AWS_ENDPOINT")
    if "ALLOW_HTTP" in options:
        options["AWS_ALLOW_HTTP"] = options.pop("ALLOW_HTTP")
    return options


def lance_options(settings: Settings) -> dict[str, str]:
    """LanceDB storage options (its object_store spells them in lower case)."""
    return _object_store_options(settings)


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop S3A settings for Spark (``spark.hadoop.`` prefix included)."""
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
    }
    endpoint = _endpoint(settings)
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    creds = _credentials()
    if "key" in creds and "secret" in creds:
        conf["spark.hadoop.fs.s3a.access.key"] = creds["key"]
        conf["spark.hadoop.fs.s3a.secret.key"] = creds["secret"]
        if "token" in creds:
            conf["spark.hadoop.fs.s3a.session.token"] = creds["token"]
            conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
                "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
            )
        else:
            conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            )
    return conf


# Clients by (process, endpoint, region, credentials): see s3_client.
_CLIENTS: dict[tuple[object, ...], Any] = {}
_CLIENTS_MUTEX = threading.Lock()


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured endpoint (credentials from the usual chain).

    One per process and configuration: building a client loads botocore's service model (about 0.1-0.3 s
    of CPU), which ``stats`` paid on every call and which took a core from the embedder while a bench
    polled it. boto3 clients are thread-safe; a forked child or new credentials get a client of their own.
    """
    key = (os.getpid(), _endpoint(settings), settings.s3_region, tuple(sorted(_credentials().items())))
    with _CLIENTS_MUTEX:
        client = _CLIENTS.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            # A session of its own: boto3's default session resolves credentials once per process.
            client = _CLIENTS[key] = boto3.session.Session().client(
                "s3",
                endpoint_url=_endpoint(settings),
                region_name=settings.s3_region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
            )
        return client


def stored_size(settings: Settings, root: str) -> int:
    """Bytes stored under a local folder or an ``s3://`` prefix (0 when there is nothing)."""
    if not is_remote(root):
        path = Path(root.removeprefix("file://"))
        if not path.exists():
            return 0
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    bucket, prefix = split_s3(root)
    total = 0
    pages = (
        s3_client(settings)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
    )
    for page in pages:
        total += sum(int(o.get("Size", 0)) for o in page.get("Contents", []))
    return total


def missing_files(settings: Settings, uris: list[str]) -> list[str]:
    """The data files of ``uris`` that are not there (a vacuumed version's files), local or on S3."""
    gone: list[str] = []
    client = None
    for uri in uris:
        if not is_remote(uri):
            if not Path(uri.removeprefix("file://")).exists():
                gone.append(uri)
            continue
        client = client or s3_client(settings)
        bucket, key = split_s3(uri.replace("s3a://", "s3://", 1))
        try:
            client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                gone.append(uri)
            else:
                raise
    return gone
