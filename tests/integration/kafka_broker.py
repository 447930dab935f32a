"""A real Apache Kafka broker (KRaft, single node) for tests, run from the Maven Central jars.

``scripts/jars.sh kafka`` fetches ``org.apache.kafka:kafka_2.13`` and its dependencies once into
``.cache/jars/kafka``; the broker then formats its storage and starts with every listener on 127.0.0.1.
Not a mock: the same server a production cluster runs.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.lakehouse.spark import ensure_jars
from pipelines.settings import Settings
from tests.integration.servers import free_ports

__all__ = ["KafkaBroker", "start_broker"]


@dataclass
class KafkaBroker:
    bootstrap: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(workdir: Path, *, timeout_s: float = 120.0) -> KafkaBroker:
    """Format KRaft storage under ``workdir`` and start a broker+controller; returns once it accepts connections."""
    jars = ensure_jars(Settings(), "kafka")
    classpath = os.pathsep.join(str(j) for j in jars)
    port, controller_port = free_ports(2)
    workdir.mkdir(parents=True, exist_ok=True)
    props = workdir / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={workdir / 'data'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
            ]
        )
        + "\n"
    )
    (workdir / "log4j.properties").write_text(
        "log4j.rootLogger=WARN, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
    )
    java = ["java", "-Xmx256m", "-XX:+UseSerialGC", f"-Dlog4j.configuration=file:{workdir / 'log4j.properties'}"]
    java += ["-cp", classpath]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # A random id may start with "-" (1 in 64): StorageTool's argument parser then reads it as an
    # option and the format fails. Kafka's own `random-uuid` avoids that the same way.
    cluster_id = "A" + cluster_id[1:] if cluster_id.startswith("-") else cluster_id
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
        check=True,
        capture_output=True,
    )
    log_path = workdir / "broker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log, stderr=subprocess.STDOUT)
    broker = KafkaBroker(bootstrap=f"127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kafka exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return broker
        except OSError:
            time.sleep(0.5)
    broker.stop()
    raise TimeoutError(f"kafka did not listen on {port} within {timeout_s}s")
