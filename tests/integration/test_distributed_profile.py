"""The distributed profile end to end, every server real and local: Redis (Celery broker), an
S3-compatible server with notifications (moto: S3 → SQS directly, through SNS, and through
EventBridge), the API, the SQS poller, and two Celery worker processes — one SIGKILLed midway.

Objects put into the bucket with boto3 become searchable without any call to our upload API; a
removed object leaves search; an API upload on this profile is stored in S3 and not ingested twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.client import DoclakeClient
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.storage.locks import FileLocks
from pipelines.vectorstore.lance import LanceVectorStore
from tests.integration.servers import aws_clients, free_port, moto_server, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "docs-bucket"
TOPICS = ["glaciers", "volcanoes", "tides", "auroras", "monsoons", "dunes", "reefs", "geysers", "fjords", "tundra"]


@dataclass
class Profile:
    env: dict[str, str]
    aws: dict[str, Any]
    queue_url: str
    data_dir: Path
    client: DoclakeClient
    workers: list[subprocess.Popen[bytes]]


def _notifications(aws: dict[str, Any]) -> str:
    s3, sqs, sns, events = aws["s3"], aws["sqs"], aws["sns"], aws["events"]
    s3.create_bucket(Bucket=BUCKET)
    queue_url: str = sqs.create_queue(QueueName="doclake-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="doclake-objects")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name="doclake-s3", EventPattern=json.dumps({"source": ["aws.s3"]}), State="ENABLED")
    events.put_targets(Rule="doclake-s3", Targets=[{"Id": "sqs", "Arn": queue_arn}])
    # Every PUT reaches the queue three times (direct, via SNS, via EventBridge): deliveries must collapse.
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}],
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}],
            "EventBridgeConfiguration": {},
        },
    )
    return queue_url


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    # Own process group: killing it kills the worker's main process and its pool child together.
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], env=env, cwd=REPO, stdout=out, stderr=out, start_new_session=True
    )


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Profile]:
    root = tmp_path_factory.mktemp("distributed")
    with redis_server(root / "redis") as redis_url, moto_server() as s3_url:
        aws = aws_clients(s3_url)
        queue_url = _notifications(aws)
        port = free_port()
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DOCLAKE_DATA_DIR": str(root / "data"),
            "DOCLAKE_BROKER_URL": redis_url,
            "DOCLAKE_BROKER_VISIBILITY_TIMEOUT_S": "15",
            "DOCLAKE_OBJECT_STORE_URL": f"s3://{BUCKET}/",
            "DOCLAKE_S3_ENDPOINT_URL": s3_url,
            "DOCLAKE_SQS_QUEUE_URL": queue_url,
            "DOCLAKE_PORT": str(port),
            "DOCLAKE_WORKER_CONCURRENCY": "1",
        }
        log = root / "processes.log"
        procs = [
            _spawn(["serve"], env, log),
            _spawn(["s3-events"], env, log),
        ]
        workers = [_spawn(["worker", "--concurrency", "1"], env, log) for _ in range(2)]
        client = DoclakeClient(f"http://127.0.0.1:{port}", timeout=120)
        try:
            deadline = time.monotonic() + 240
            while not client.health():
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
            yield Profile(env, aws, queue_url, root / "data", client, workers)
        finally:
            client.close()
            for p in [*procs, *workers]:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in [*procs, *workers]:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
            sys.stdout.write(log.read_text(errors="replace")[-4000:])


def _document(i: int) -> bytes:
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"Field note {i} about {topic}.\n\n"
        f"Observation {i}: the survey team measured {topic} at site {i * 7} and logged reading {i * 13}. "
        f"The {topic} report number {i} recommends a follow-up visit in season {i % 4 + 1}."
    ).encode()


def _doc_rows(lake: Lake) -> list[dict[str, Any]]:
    return lake.read(
        DOCUMENTS, "tenant = 'default'", columns=["doc_id", "version", "status", "chunks", "filename"]
    ).to_pylist()


def test_s3_objects_become_searchable_with_a_worker_killed_midway(profile: Profile, corpus: Path) -> None:
    s3 = profile.aws["s3"]
    keys = {f"raw/notes/field note {i:02d}.txt": _document(i) for i in range(27)}
    for name in ("md/unst__codeblock.md", "html/unst__fake-html.html", "eml/unst__family-day.eml"):
        keys[f"raw/corpus/{Path(name).name}"] = (corpus / name).read_bytes()
    assert len(keys) == 30
    for key, data in keys.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    s3.put_object(Bucket=BUCKET, Key="elsewhere/ignored.txt", Body=b"outside the watched prefix")

    lake = Lake(profile.data_dir.resolve() / "lake", locks=FileLocks(profile.data_dir / "run" / "locks"))
    deadline = time.monotonic() + 240
    while sum(r["status"] == "indexed" for r in _doc_rows(lake)) < 3:
        assert time.monotonic() < deadline, "nothing got indexed"
        time.sleep(0.5)
    victim = profile.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)  # the whole worker: main process and pool child
    victim.wait(10)

    deadline = time.monotonic() + 420
    while True:
        rows = _doc_rows(lake)
        if len(rows) >= 30 and all(r["status"] in ("indexed", "failed") for r in rows):
            break
        assert time.monotonic() < deadline, [(r["filename"], r["status"]) for r in rows if r["status"] != "indexed"]
        time.sleep(1)

    assert len(rows) == 30 and {r["status"] for r in rows} == {"indexed"}, rows
    assert {r["version"] for r in rows} == {1}  # three deliveries per PUT, one ingestion
    assert sorted(r["filename"] for r in rows) == sorted(k.rsplit("/", 1)[1] for k in keys)
    gold = lake.read(CHUNKS, "tenant = 'default'", columns=["chunk_id", "doc_id"]).to_pylist()
    assert len(gold) == len({g["chunk_id"] for g in gold}) == sum(r["chunks"] for r in rows)
    store = LanceVectorStore(profile.data_dir / "vectors")
    assert store.count("default") == len(gold)

    hits = profile.client.search("survey team measured geysers at site 49", top_k=3).results
    assert hits[0].filename == "field note 07.txt"

    # Removing the object removes the document from search.
    s3.delete_object(Bucket=BUCKET, Key="raw/notes/field note 07.txt")
    doc_id = hits[0].doc_id
    deadline = time.monotonic() + 120
    while profile.client.get(doc_id).status != "deleted":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert all(h.doc_id != doc_id for h in profile.client.search("geysers at site 49", top_k=10).results)


def test_api_uploads_on_this_profile_land_in_s3_once(profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "api-upload.md"
    path.write_text("# Runbook\n\nRotate the storage credentials every ninety days.\n")
    accepted = profile.client.upload(path)
    assert profile.client.wait(accepted.doc_id, timeout=180).status == "indexed"
    listed = profile.aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"raw/default/{accepted.doc_id}/")
    assert len(listed.get("Contents", [])) == 1
    time.sleep(3)  # its S3 notifications arrive too; they must not create a second document
    lake = Lake(profile.data_dir.resolve() / "lake", locks=FileLocks(profile.data_dir / "run" / "locks"))
    assert [r["filename"] for r in _doc_rows(lake)].count("api-upload.md") == 1
    assert profile.client.search("how often are storage credentials rotated", top_k=1).results[0].doc_id == (
        accepted.doc_id
    )
