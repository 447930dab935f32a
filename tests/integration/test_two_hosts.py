"""The lakehouse on object storage: two hosts with different data dirs and the same URLs see one lake.

Two "hosts" on one machine share only a real S3 server (SeaweedFS: the lake, the vectors and the raw
objects), Redis (locks and the Celery broker) and Kafka (the update stream's source). Host A runs
`doclake up`; host B runs `doclake serve` and its own `doclake worker`. Each has its own data dir,
and at the end neither holds a Delta log or a Lance table: everything lives in the bucket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.client import DoclakeClient
from tests.integration.servers import S3_KEY, S3_SECRET, free_port, redis_server, seaweed_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
LAKE_BUCKET, RAW_BUCKET = "lake", "raw"
WEBHOOK_SECRET = "two-hosts-webhook-secret"
ADMIN_KEY = "two-hosts-admin-key-0123456789"
USER_KEY = "two-hosts-user-key-0123456789"
TENANT = "default"
# The update stream and the Spark reindex (a JVM each, minutes on busy cores): DOCLAKE_TEST_TWO_HOSTS_STREAM=false
# leaves them out (no Kafka either) for a quicker run of the rest.
STREAM = os.environ.get("DOCLAKE_TEST_TWO_HOSTS_STREAM", "true") != "false"


@dataclass
class Host:
    name: str
    env: dict[str, str]
    data_dir: Path
    client: DoclakeClient
    admin: DoclakeClient
    log: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A `doclake` command run with this host's settings (an operator on this host)."""
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"doclake {' '.join(args)} on {self.name} exited {done.returncode}:\n{done.stderr}")
        return done

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        out = self.log.open("ab")
        # Own process group: a SIGKILL of the group takes a worker's pool children with it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=REPO,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def lake_state(self) -> dict[str, Any]:
        """Silver, the active gold and the vector ids, read in a fresh process with this host's settings."""
        done = subprocess.run(
            [sys.executable, "-c", _STATE],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        state: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return state


_STATE = """
import json
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.runtime import Runtime
from pipelines.settings import Settings
rt = Runtime.from_settings(Settings())
index = rt.index(fresh=True)
docs = rt.lake.read(DOCUMENTS, columns=["doc_id", "version", "status", "chunks", "chunker_id", "filename"])
gold = rt.lake.read(index.gold, columns=["chunk_id", "doc_id", "doc_version", "chunker_id"])
vectors = [s.model_dump() for s in rt.vectors.iter_ids()]
print(json.dumps({"index": index.index_id, "docs": docs.to_pylist(), "gold": gold.to_pylist(), "vectors": vectors}))
"""


@dataclass
class TwoHosts:
    a: Host
    b: Host
    up: subprocess.Popen[bytes]
    s3: Any
    docs: dict[str, str] = field(default_factory=dict)  # doc_id -> the phrase its last version holds
    gone: set[str] = field(default_factory=set)  # deleted or purged


def _wait(what: str, ok: Callable[[], bool], *, timeout: float, logs: tuple[Path, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.5)


def _children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(proc.pid).children(recursive=False)
        return children
    except psutil.NoSuchProcess:
        return []


def _up_child(up: subprocess.Popen[bytes], command: str, queue: str | None = None) -> psutil.Process | None:
    """The child of `doclake up` running ``command`` (for a worker: the one consuming ``queue``)."""
    for child in _children(up):
        try:
            cmd = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if command in cmd and (queue is None or queue in cmd):
            return child
    return None


def _kill_tree(proc: psutil.Process) -> None:
    """SIGKILL a process and everything under it (a Celery worker and its pool; a stream and its JVM)."""
    victims = [proc, *proc.children(recursive=True)]
    for p in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=15)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    import boto3

    root = tmp_path_factory.mktemp("two-hosts")
    with (
        redis_server(root / "redis") as redis_url,
        seaweed_s3(root / "s3", buckets=(LAKE_BUCKET, RAW_BUCKET)) as s3_url,
    ):
        broker = None
        if STREAM:
            from tests.integration.kafka_broker import start_broker

            broker = start_broker(root / "kafka")
        shared = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "DOCLAKE_S3_ENDPOINT_URL": s3_url,
            "DOCLAKE_LAKE_URL": f"s3://{LAKE_BUCKET}/lake",
            "DOCLAKE_VECTORS_URL": f"s3://{LAKE_BUCKET}/vectors",
            "DOCLAKE_OBJECT_STORE_URL": f"s3://{RAW_BUCKET}/",
            "DOCLAKE_LOCK_URL": redis_url.rsplit("/", 1)[0] + "/1",
            "DOCLAKE_BROKER_URL": redis_url,
            # A task of a SIGKILLed worker comes back after this long (Redis has no ack on connection loss).
            "DOCLAKE_BROKER_VISIBILITY_TIMEOUT_S": "20",
            "DOCLAKE_LOCK_LEASE_S": "10",
            "DOCLAKE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DOCLAKE_ADMIN_KEY": ADMIN_KEY,
            "DOCLAKE_API_KEYS": f"{USER_KEY}:{TENANT}",
            "DOCLAKE_API_KEY": USER_KEY,
            "DOCLAKE_WORKER_CONCURRENCY": "1",
            "DOCLAKE_EMBED_CONCURRENCY": "1",
            "DOCLAKE_EXTRACT_TIMEOUT_S": "60",
            "DOCLAKE_EXTRACT_MEMORY_MB": "1500",
            "DOCLAKE_SWEEP_INTERVAL_S": "20",
            "DOCLAKE_STUCK_AFTER_S": "60",
            "DOCLAKE_STREAM_ENABLED": "true" if STREAM else "false",
            # Kafka source: the API sends its PATCH/DELETE events to the topic (without a broker: bronze only).
            "DOCLAKE_STREAM_SOURCE": "kafka" if STREAM else "delta",
            "DOCLAKE_STREAM_TRIGGER_S": "2",
            "DOCLAKE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap if broker else "127.0.0.1:9",
        }
        shared.pop("PROMETHEUS_MULTIPROC_DIR", None)
        hosts: list[Host] = []
        for name in ("a", "b"):
            port = free_port()
            data_dir = root / f"host-{name}" / "data"
            env = {
                **shared,
                "DOCLAKE_DATA_DIR": str(data_dir),
                "DOCLAKE_PORT": str(port),
                "DOCLAKE_URL": f"http://127.0.0.1:{port}",
            }
            client = DoclakeClient(env["DOCLAKE_URL"], api_key=USER_KEY, timeout=120)
            admin = DoclakeClient(env["DOCLAKE_URL"], api_key=ADMIN_KEY, timeout=120)
            hosts.append(Host(name, env, data_dir, client, admin, root / f"host-{name}.log"))
        a, b = hosts
        up = a.spawn("up")
        # Host B after A has bootstrapped the lake would hide a bootstrap race: start both at once.
        b.spawn("serve")
        b.spawn("worker", "--concurrency", "1")
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
        )
        try:
            for host in hosts:
                _wait(f"host {host.name} healthy", host.client.health, timeout=300, logs=(host.log,))
            yield TwoHosts(a, b, up, s3)
        finally:
            for host in hosts:
                host.client.close()
                host.admin.close()
                for p in host.procs:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGTERM)
            for host in hosts:
                for p in host.procs:
                    try:
                        p.wait(60)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                sys.stdout.write(f"--- host {host.name}\n{host.log.read_text(errors='replace')[-4000:]}\n")
            if broker is not None:
                broker.stop()


def _note(i: int, topic: str, *, edition: int = 1) -> str:
    return (
        f"# Field note {i}: {topic}\n\n"
        f"Edition {edition}. The survey team measured {topic} at site {i * 7 + edition}"
        f" and logged reading {i * 13}.\n\n"
        f"The {topic} report number {i} recommends a follow-up visit in season {i % 4 + 1}.\n"
    )


def _indexed(host: Host, doc_id: str, version: int | None = None) -> bool:
    doc = host.client.get(doc_id)
    assert doc.status != "failed", doc
    return doc.status == "indexed" and (version is None or doc.version >= version)


def _top(host: Host, query: str) -> str | None:
    hits = host.client.search(query, top_k=3).results
    return hits[0].doc_id if hits else None


def _s3_record(event: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """One MinIO-style notification record, as its webhook target would POST it."""
    return {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventName": event,
        "s3": {
            "bucket": {"name": RAW_BUCKET},
            "object": {"key": key, "size": size, "eTag": etag, "sequencer": f"{time.time_ns():X}"},
        },
    }


def _post_event(host: Host, record: dict[str, Any], *, token: str = WEBHOOK_SECRET) -> Any:
    import httpx

    return httpx.post(
        f"{host.env['DOCLAKE_URL']}/v1/events/s3",
        json={"EventName": record["eventName"], "Key": record["s3"]["object"]["key"], "Records": [record]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_uploads_and_s3_events_on_both_hosts_become_one_lake(hosts: TwoHosts, tmp_path: Path) -> None:
    a, b = hosts.a, hosts.b
    accepted = []
    for i, (host, topic) in enumerate([(a, "glaciers"), (b, "volcanoes"), (a, "tides"), (b, "auroras")]):
        path = tmp_path / f"note-{i}.md"
        path.write_text(_note(i, topic))
        accepted.append((host.client.upload(path), topic))
    # SeaweedFS has no bucket notifications: the test plays the bridge a MinIO webhook target would be,
    # putting the object with boto3 and POSTing its event record to host B's webhook.
    body = _note(9, "geysers").encode()
    put = hosts.s3.put_object(Bucket=RAW_BUCKET, Key="raw/inbox/geysers.md", Body=body)
    record = _s3_record("s3:ObjectCreated:Put", "raw/inbox/geysers.md", len(body), put["ETag"].strip('"'))
    assert _post_event(b, record, token="wrong").status_code == 401
    answer = _post_event(b, record)
    assert answer.status_code == 200 and answer.json() == {"events": 1, "dispatched": 1}, answer.text

    for doc, _ in accepted:
        _wait(f"{doc.doc_id} indexed", partial(_indexed, a, doc.doc_id), timeout=300, logs=(a.log, b.log))
    _wait(
        "the S3 object registered",
        lambda: any(d.filename == "geysers.md" for d in a.client.list().documents),
        timeout=120,
    )
    for doc, topic in accepted:
        hosts.docs[doc.doc_id] = topic
    geysers = next(d for d in a.client.list().documents if d.filename == "geysers.md")
    _wait("geysers indexed", lambda: _indexed(b, geysers.doc_id), timeout=300, logs=(a.log, b.log))
    hosts.docs[geysers.doc_id] = "geysers"

    # Each host's API finds what was uploaded through the other.
    for doc_id, topic in hosts.docs.items():
        for host in (a, b):
            assert _top(host, f"the survey team measured {topic}") == doc_id, (host.name, topic)
    # The event delivered twice (a webhook retry) does not make a second document.
    assert _post_event(b, record).json()["dispatched"] == 0
    assert _post_event(a, record).json()["events"] == 1
    time.sleep(2)
    assert [d.filename for d in b.client.list().documents].count("geysers.md") == 1


def _job(starter: Host, watcher: Host, kind: str, params: dict[str, Any], *, timeout: float = 300) -> dict[str, Any]:
    """Start an operator job through ``starter``'s API and follow it through ``watcher``'s (shared records)."""
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    started = httpx.post(
        f"{starter.env['DOCLAKE_URL']}/v1/jobs", json={"kind": kind, "params": params}, headers=headers, timeout=60
    )
    assert started.status_code in (200, 201, 202), started.text
    job_id = started.json()["job_id"]
    record: dict[str, Any] = {}

    def done() -> bool:
        answer = httpx.get(f"{watcher.env['DOCLAKE_URL']}/v1/jobs/{job_id}", headers=headers, timeout=60)
        if answer.status_code == 404:  # not written yet
            return False
        assert answer.status_code == 200, answer.text
        record.update(answer.json())
        return bool(record["status"] != "running")

    _wait(f"{kind} job {job_id}", done, timeout=timeout, logs=(starter.log,))
    assert record["status"] == "succeeded", record
    return record


def test_edit_delete_and_restore_across_hosts(hosts: TwoHosts, tmp_path: Path) -> None:
    a, b = hosts.a, hosts.b
    doc_ids = list(hosts.docs)
    # An edit on B of a document uploaded through A: a new version, seen by A at its new text.
    edited = doc_ids[0]
    path = tmp_path / "edited.md"
    path.write_text(_note(0, "crevasses", edition=2))
    accepted = b.client.upload(path, doc_id=edited)
    assert accepted.doc_id == edited and accepted.version > 1
    _wait("the edit indexed", lambda: _indexed(a, edited, accepted.version), timeout=300, logs=(a.log, b.log))
    hosts.docs[edited] = "crevasses"
    assert _top(a, "the survey team measured crevasses") == edited

    # A restore point, then a delete on B that A's search drops at once.
    time.sleep(1.5)  # the restore timestamp must fall strictly between two commits
    before_delete = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    time.sleep(1.5)
    victim = doc_ids[1]
    stream_log_at = a.log.stat().st_size
    assert b.client.delete(victim).status == "deleted"
    assert a.client.get(victim).status == "deleted"
    hits = a.client.search(f"the survey team measured {hosts.docs[victim]}", top_k=10).results
    assert all(h.doc_id != victim for h in hits)
    if STREAM:
        # The delete's change event also reaches A's stream. Restore only once the stream has taken
        # it (a no-op then: the document is already deleted); taken after the restore, it deletes the
        # restored document again (an ordering limit of restore against in-flight stream events).
        def delete_event_applied() -> bool:
            tail = a.log.read_bytes()[stream_log_at:].splitlines()
            return any(b"stream batch" in line and re.search(rb'"events":[1-9]', line) for line in tail)

        _wait("the delete event applied by A's stream", delete_event_applied, timeout=300, logs=(a.log,))

    # Restore of silver and gold from A (a table restore, then the vector stores re-mirrored): B finds it again.
    out = json.loads(a.cli("restore", "all", "--timestamp", before_delete, "--json").stdout)
    assert "silver.documents" in {t["table"] for t in out["tables"]}, out
    assert b.client.get(victim).status == "indexed"
    assert _top(b, f"the survey team measured {hosts.docs[victim]}") == victim
    # ...and the delete, redone through A, holds on B.
    assert a.client.delete(victim).status == "deleted"
    assert all(h.doc_id != victim for h in b.client.search(hosts.docs[victim], top_k=10).results)
    hosts.gone.add(victim)

    # The same document edited through both APIs at once: the document lock (Redis) gives each upload
    # its own version; the document ends indexed at the newer one, with that upload's text.
    contested = doc_ids[2]

    def edit(host: Host, edition: int) -> int:
        text = _note(2, "sandbars", edition=edition).encode()
        return host.client.upload(text, filename="contested.md", doc_id=contested).version

    with ThreadPoolExecutor(2) as pool:
        versions = dict(zip((3, 4), pool.map(edit, (a, b), (3, 4)), strict=True))  # edition -> version
    assert len(set(versions.values())) == 2, versions
    newest = max(versions.values())
    _wait("the contested edit indexed", lambda: _indexed(b, contested, newest), timeout=300, logs=(a.log, b.log))
    assert a.client.get(contested).version == newest
    winner = next(edition for edition, version in versions.items() if version == newest)
    hits = b.client.search("the survey team measured sandbars", top_k=1).results
    assert hits[0].doc_id == contested and f"site {2 * 7 + winner}" in hits[0].text, hits[0]
    hosts.docs[contested] = "sandbars"

    # An object removed from the watched prefix: its ObjectRemoved record delivered to A's webhook
    # (the notification bridge again) deletes the document everywhere.
    s3_doc = next(d for d, topic in hosts.docs.items() if topic == "geysers")
    hosts.s3.delete_object(Bucket=RAW_BUCKET, Key="raw/inbox/geysers.md")
    removed = _post_event(a, _s3_record("s3:ObjectRemoved:Delete", "raw/inbox/geysers.md", 0, ""))
    assert removed.status_code == 200 and removed.json()["dispatched"] == 1, removed.text
    _wait("the removed object's document deleted", lambda: b.client.get(s3_doc).status == "deleted", timeout=120)
    assert all(h.doc_id != s3_doc for h in a.client.search("the survey team measured geysers", top_k=10).results)
    hosts.gone.add(s3_doc)


def test_operator_commands_from_either_host(hosts: TwoHosts) -> None:
    a, b = hosts.a, hosts.b
    live = [d for d in hosts.docs if d not in hosts.gone]
    # reindex (in place, this process's engine) from B's CLI: every live document rebuilt, A's search intact.
    report = json.loads(b.cli("reindex", "--json", timeout=600).stdout)
    assert report["documents"] + report["skipped"] >= len(live), report
    for doc_id in live:
        assert _top(a, f"the survey team measured {hosts.docs[doc_id]}") == doc_id

    # reconcile through B's jobs API, followed through A's (job records live beside the lake).
    job = _job(b, a, "reconcile", {})
    assert job["result"]["clean"], job
    # optimize from A's CLI (delta-rs; the Spark engine is exercised by the stream's host): B sees the commit.
    out = json.loads(a.cli("optimize", "--engine", "local", "--json", timeout=600).stdout)
    assert out["tables"], out
    history = json.loads(b.cli("history", "silver", "--json").stdout)
    assert history[0]["entries"][0]["operation"] in ("OPTIMIZE", "VACUUM END", "VACUUM START"), history[0]["entries"][0]

    # purge of one document from A: rows, vectors and its raw object gone for B too.
    purged = live[-1]
    out = json.loads(a.cli("purge", "--tenant", TENANT, "--doc-id", purged, "--json", timeout=600).stdout)
    assert out["doc_ids"] == [purged] and out["vectors_removed"] > 0, out
    import httpx

    answer = httpx.get(
        f"{b.env['DOCLAKE_URL']}/v1/documents/{purged}", headers={"Authorization": f"Bearer {USER_KEY}"}, timeout=60
    )
    assert answer.status_code == 404, answer.text
    assert all(h.doc_id != purged for h in b.client.search(hosts.docs[purged], top_k=10).results)
    listed = hosts.s3.list_objects_v2(Bucket=RAW_BUCKET, Prefix=f"raw/{TENANT}/{purged}/")
    assert not listed.get("Contents"), listed
    hosts.gone.add(purged)
    del hosts.docs[purged]


def test_killed_workers_leave_no_document_behind(hosts: TwoHosts) -> None:
    a, b = hosts.a, hosts.b
    topics = ["monsoons", "dunes", "reefs", "fjords", "tundra", "lagoons", "mesas", "deltas"]
    ids = []
    for i, topic in enumerate(topics, start=20):
        appendix = "\n".join(
            f"Line {k} of the {topic} appendix: sample {k * i} was logged at dawn." for k in range(120)
        )
        # One request per document: separate tasks, spread over both hosts' workers (a batch is one task).
        accepted = a.client.upload(_note(i, topic).encode() + appendix.encode(), filename=f"batch-{i}.md")
        ids.append(accepted.doc_id)
        hosts.docs[accepted.doc_id] = topic

    # Mid-work: a document being extracted or embedded, others still queued. Kill A's workers (both fleets)
    # outright; what they had taken (running or prefetched, unacknowledged) must come back and finish.
    def in_flight() -> bool:
        statuses = [a.client.get(d).status for d in ids]
        return any(s in ("extracting", "embedding") for s in statuses) and any(not s.terminal for s in statuses)

    _wait("the uploads in flight", in_flight, timeout=120, logs=(a.log, b.log))
    killed = []
    for queue in ("extract", "embed"):
        child = _up_child(hosts.up, "worker", queue)
        assert child is not None, [c.cmdline() for c in _children(hosts.up)]
        killed.append(child.pid)
        _kill_tree(child)

    # `doclake up` restarts its workers; B's worker keeps going; unacked tasks come back after the visibility timeout.
    _wait(
        "A's workers restarted",
        lambda: all(
            (c := _up_child(hosts.up, "worker", q)) is not None and c.pid not in killed for q in ("extract", "embed")
        ),
        timeout=60,
        logs=(a.log,),
    )
    for doc_id in ids:
        _wait(f"{doc_id} indexed after the kills", partial(_indexed, b, doc_id), timeout=420, logs=(a.log, b.log))


@pytest.mark.skipif(not STREAM, reason="DOCLAKE_TEST_TWO_HOSTS_STREAM=false: no update stream (Spark on s3://)")
def test_patch_through_the_stream_survives_a_killed_stream(hosts: TwoHosts) -> None:
    a, b = hosts.a, hosts.b
    live = [d for d in hosts.docs if d not in hosts.gone]
    target = live[0]
    topic = hosts.docs[target]

    def visible(route: str) -> Callable[[], bool]:
        def check() -> bool:
            hits = a.client.search(f"the survey team measured {topic}", top_k=3, filter={"route": route}).results
            return bool(hits) and hits[0].doc_id == target

        return check

    # A metadata PATCH on B (an event on Kafka) applied by A's stream: once the JVM is up, within seconds.
    first = b.client.patch_metadata(target, {"route": "north"})
    _wait("the first patch applied by the stream", visible("north"), timeout=480, logs=(a.log,))
    # A second PATCH, and A's stream SIGKILLed right after, while it is taking that micro-batch or about to;
    # `doclake up` restarts it and the new query resumes from its checkpoint: the patch applies once.
    second = b.client.patch_metadata(target, {"route": "south"})
    assert second.version > first.version
    stream = _up_child(hosts.up, "stream")
    assert stream is not None, [c.cmdline() for c in _children(hosts.up)]
    time.sleep(1.0)  # into the 2 s trigger window: the batch holding the event is under way or next
    _kill_tree(stream)
    _wait("the stream restarted", lambda: _up_child(hosts.up, "stream") is not None, timeout=60, logs=(a.log,))
    _wait("the second patch applied by the restarted stream", visible("south"), timeout=480, logs=(a.log,))
    assert not visible("north")()
    doc = b.client.get(target)
    assert doc.version == second.version and doc.metadata.get("route") == "south", doc

    # A blue-green reindex to a new chunk size on Spark executors (the engine's job), from B: it switches
    # the active index for both hosts, and A's search answers from the new one.
    report = json.loads(
        b.cli("reindex", "--engine", "spark", "--chunk-max-tokens", "160", "--json", timeout=900).stdout
    )
    assert report["mode"] == "blue_green" and report["switched"], report
    assert report["documents"] + report["skipped"] >= len(live), report
    indexes = json.loads(a.cli("indexes", "--json").stdout)
    assert [i["index_id"] for i in indexes if i["state"] == "active"] == [report["index_id"]], indexes
    for doc_id in live:
        assert _top(a, f"the survey team measured {hosts.docs[doc_id]}") == doc_id


def test_end_state_is_one_consistent_lake_in_the_bucket(hosts: TwoHosts) -> None:
    a, b = hosts.a, hosts.b
    state = b.lake_state()
    docs = {d["doc_id"]: d for d in state["docs"]}
    live = {d for d in hosts.docs if d not in hosts.gone}
    assert {d for d, row in docs.items() if row["status"] == "indexed"} == live
    assert all(docs[d]["status"] == "deleted" for d in hosts.gone if d in docs)
    for doc_id in live:
        doc = a.client.get(doc_id)
        assert doc.version == docs[doc_id]["version"]
        gold = [g for g in state["gold"] if g["doc_id"] == doc_id]
        vectors = [v for v in state["vectors"] if v["doc_id"] == doc_id]
        # Exactly once, at the last version: one gold row per chunk, one vector per gold row, no stale ones.
        assert gold, doc_id
        # Without the Spark reindex (a new chunker) the index is the one every document was ingested into.
        assert STREAM or {g["chunker_id"] for g in gold} == {docs[doc_id]["chunker_id"]}, (doc_id, gold)
        if {g["chunker_id"] for g in gold} == {docs[doc_id]["chunker_id"]}:
            # Silver counts the chunks of the index it was ingested into; after a blue-green switch to
            # another chunker only the active gold (and its vectors) describe the new chunking.
            assert len(gold) == docs[doc_id]["chunks"], (doc_id, gold)
        assert len({g["chunk_id"] for g in gold}) == len(gold)
        assert {g["doc_version"] for g in gold} == {docs[doc_id]["version"]}
        assert sorted(v["id"] for v in vectors) == sorted(g["chunk_id"] for g in gold), doc_id
        assert {v["doc_version"] for v in vectors} == {docs[doc_id]["version"]}
    assert not [v for v in state["vectors"] if v["doc_id"] not in live]
    assert not [g for g in state["gold"] if g["doc_id"] not in live]

    # Nothing to repair, and the data products' checks pass (evaluated on A, read on B).
    done = a.cli("reconcile", "--no-repair", "--json", check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["clean"], done.stdout + done.stderr
    evaluated = a.admin.products(evaluate=True)
    results = [(p.manifest.name, r) for p in evaluated.products if p.latest for r in p.latest.results]
    assert results, evaluated
    failing = {(name, r.check): r.examples for name, r in results if not r.ok}
    # Every check, `chunk_counts_match` included: after the blue-green switch to another chunker,
    # silver's counts follow the new index (lakehouse.writer.follow_index).
    assert not failing, failing
    seen = b.admin.products()  # the report was stored beside the lake: B reads A's evaluation
    assert [p.latest.checked_at if p.latest else None for p in seen.products] == [
        p.latest.checked_at if p.latest else None for p in evaluated.products
    ]

    # Every table and every vector lives in the bucket: neither data dir holds a Delta log or a Lance table.
    for host in (a, b):
        local = [p for p in host.data_dir.rglob("*") if p.name == "_delta_log" or p.name.endswith(".lance")]
        assert not local, (host.name, local)
    lake_keys = hosts.s3.list_objects_v2(Bucket=LAKE_BUCKET, Prefix="lake/")
    assert any("_delta_log/" in o["Key"] for o in lake_keys.get("Contents", []))
