"""The start-up check of an S3 endpoint: conditional PUT enforced, bucket there, credentials right."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipelines.errors import ConfigError
from pipelines.runtime import Runtime
from pipelines.settings import Settings
from pipelines.storage import probe
from tests.integration.servers import S3_KEY, seaweed_client, seaweed_s3
from tests.pipelines.storage.conftest import s3_settings_kwargs

pytestmark = pytest.mark.integration


def _objects(endpoint: str, bucket: str) -> list[str]:
    s3 = seaweed_client(endpoint)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture(autouse=True)
def _fresh_probe() -> None:
    probe._verified.clear()  # each test probes anew


class _DropConditions(BaseHTTPRequestHandler):
    """Forwards every request but drops ``If-None-Match``: an endpoint (or a proxy in front of one)
    that ignores conditional PUT, which silently loses concurrent commits."""

    upstream = ""

    def _forward(self) -> None:
        target = urlsplit(self.upstream)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"if-none-match", "host"}}
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def unconditional_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # SeaweedFS without signature checks behind a proxy that strips the header (a re-signed request
    # would be needed otherwise).
    with seaweed_s3(tmp_path_factory.mktemp("weed-open"), buckets=("lake",), auth=False) as upstream:
        handler = type("Handler", (_DropConditions,), {"upstream": upstream})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_an_endpoint_that_enforces_conditional_put_passes(s3_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    settings = Settings(**s3_settings_kwargs(s3_endpoint, None, "probe-ok", tmp_path))  # type: ignore[arg-type]
    probe.verify_object_store(settings, settings.lake_root)
    assert not [k for k in _objects(s3_endpoint, "lake") if "probe" in k]  # the probe cleans up


def test_an_endpoint_ignoring_conditional_put_is_refused_before_any_table_is_written(
    unconditional_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    settings = Settings(**s3_settings_kwargs(unconditional_endpoint, None, "nocond", tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not enforce conditional PUT") as refused:
        Runtime.from_settings(settings)
    assert "silently overwrite" in str(refused.value)
    assert not [k for k in _objects(unconditional_endpoint, "lake") if "_delta_log" in k]


def test_wrong_credentials_are_named_and_nothing_is_written(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    settings = Settings(**s3_settings_kwargs(s3_endpoint, None, "badcreds", tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="credentials"):
        Runtime.from_settings(settings)
    assert not [k for k in _objects(s3_endpoint, "lake") if k.startswith("badcreds/")]


def test_a_missing_bucket_is_named_and_not_created(s3_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    kwargs = s3_settings_kwargs(s3_endpoint, None, "x", tmp_path) | {"lake_url": "s3://no-such-bucket/warehouse"}
    with pytest.raises(ConfigError, match="'no-such-bucket' does not exist"):
        Runtime.from_settings(Settings(**kwargs))  # type: ignore[arg-type]
    s3 = seaweed_client(s3_endpoint)
    assert "no-such-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_other_object_store_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only s3://"):
        Runtime.from_settings(Settings(data_dir=tmp_path, lake_url="gs://bucket/lake"))
