"""Start the real embedded stack (`doclake up`) as a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.client import DoclakeClient
from tests.integration.servers import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    client: DoclakeClient
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return self.env["DOCLAKE_URL"]

    def run(self, *args: str, timeout: float = 180) -> str:
        """Run a `doclake` CLI command against this stack; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout

    def python(self, code: str, timeout: float = 180) -> None:
        """Run Python code in a fresh process with this stack's settings (as another producer would)."""
        subprocess.run([sys.executable, "-c", code], env=self.env, cwd=REPO, check=True, timeout=timeout)


@contextmanager
def embedded_stack(
    root: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (), own_session: bool = False
) -> Iterator[Stack]:
    """`doclake up` on a fresh data root and a free port, healthy before it is yielded.

    ``own_session`` starts it as a terminal starts a command: the leader of its own process group,
    which a test signals whole with ``os.killpg`` as Ctrl-C does.
    """
    data_dir = root / "data"
    port = free_port()
    full_env = {
        **os.environ,
        "DOCLAKE_DATA_DIR": str(data_dir),
        "DOCLAKE_PORT": str(port),
        "DOCLAKE_URL": f"http://127.0.0.1:{port}",
        "DOCLAKE_EXTRACT_TIMEOUT_S": "60",
        "DOCLAKE_EXTRACT_MEMORY_MB": "1500",
        # The update stream is a Spark JVM: only the stacks that test it start it (tests/e2e/test_stream_up.py).
        "DOCLAKE_STREAM_ENABLED": "false",
        **(env or {}),
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = root / "up.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", *args],
        env=full_env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=own_session,
    )
    client = DoclakeClient(full_env["DOCLAKE_URL"], timeout=120)
    try:
        deadline = time.monotonic() + 240
        while not client.health():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"doclake up did not become healthy: {log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield Stack(client=client, data_dir=data_dir, env=full_env, proc=proc, log=log_path)
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        sys.stdout.write(log_path.read_text(errors="replace")[-4000:])
