"""docker-compose.yml cannot be run here (no Docker engine), so its wiring is checked against the code:
every command is a real CLI command with real options, every setting in .env is one the code reads,
and the addresses the services give each other agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import typer
import yaml

from app.auth import ensure_safe_bind
from app.cli import cli
from app.main import create_app
from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_every_doclake_command_and_option_exists(compose: dict[str, Any]) -> None:
    commands = typer.main.get_command(cli).commands  # type: ignore[attr-defined]
    checked = 0
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:1] != ["doclake"]:
            continue
        assert command[1] in commands, f"{name}: no CLI command {command[1]!r}"
        known = {opt for p in commands[command[1]].params for opt in p.opts}
        assert {a for a in command[2:] if a.startswith("--")} <= known, name
        assert service["env_file"] == ".env", name
        checked += 1
    assert checked >= 5
    queues = {
        s["command"][s["command"].index("--queues") + 1]
        for s in compose["services"].values()
        if "--queues" in s.get("command", [])
    }
    assert queues == {"extract", "embed", "ocr"}


def test_dotenv_holds_only_settings_the_code_reads(dotenv: dict[str, str]) -> None:
    fields = {f"DOCLAKE_{n.upper()}" for n in Settings.model_fields}
    doclake_keys = {k for k in dotenv if k.startswith("DOCLAKE_")}
    assert doclake_keys <= fields, doclake_keys - fields
    settings = Settings(**{k.removeprefix("DOCLAKE_").lower(): v for k, v in dotenv.items() if k in doclake_keys})
    assert settings.object_store_url and settings.broker_url
    # The api service binds 0.0.0.0: the service must accept that with the shared settings.
    assert "auth on" in ensure_safe_bind(settings, "0.0.0.0")


def test_services_agree_on_addresses(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert urlparse(dotenv["DOCLAKE_BROKER_URL"]).hostname == "redis"
    s3 = urlparse(dotenv["DOCLAKE_S3_ENDPOINT_URL"])
    assert (s3.hostname, s3.port) == ("minio", 9000)
    assert dotenv["DOCLAKE_KAFKA_BOOTSTRAP_SERVERS"] in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert dotenv["DOCLAKE_OBJECT_STORE_URL"].startswith("s3://doclake")
    assert "mc mb --ignore-existing local/doclake" in services["minio-setup"]["command"][0]
    assert f"--prefix {dotenv['DOCLAKE_S3_WATCH_PREFIX']}" in services["minio-setup"]["command"][0]


def test_minio_webhook_targets_the_real_route(compose: dict[str, Any]) -> None:
    minio = compose["services"]["minio"]["environment"]
    endpoint = urlparse(minio["MINIO_NOTIFY_WEBHOOK_ENDPOINT_DOCLAKE"])
    api_command = compose["services"]["api"]["command"]
    assert endpoint.hostname == "api" and endpoint.port == int(api_command[api_command.index("--port") + 1])
    assert endpoint.path in create_app(Settings()).openapi()["paths"]
    assert minio["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_DOCLAKE"] == "${DOCLAKE_WEBHOOK_SECRET}"


def test_image_installs_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("app", "workers", "pipelines"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_no_service_shares_a_disk_and_the_lake_lives_in_minio_and_redis(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    services = compose["services"]
    doclake = {n: s for n, s in services.items() if s.get("command", [])[:1] == ["doclake"]}
    mounts: dict[str, list[str]] = {}
    for name, service in doclake.items():
        for volume in service.get("volumes", []):
            mounts.setdefault(volume.split(":")[0], []).append(name)
    assert all(len(users) == 1 for users in mounts.values()), mounts  # nothing shared between containers
    assert set(mounts.get("stream-checkpoint", [])) == {"stream"}
    settings = Settings(
        **{k.removeprefix("DOCLAKE_").lower(): v for k, v in dotenv.items() if k.startswith("DOCLAKE_")}
    )
    bucket = urlparse(settings.object_store_url or "").hostname
    for url in (settings.lake_url, settings.vectors_url):
        assert url and url.startswith(f"s3://{bucket}/"), url  # the bucket minio-setup creates
    assert "mc mb --ignore-existing local/" + str(bucket) in " ".join(services["minio-setup"]["command"])
    assert urlparse(settings.lock_url or "").hostname == "redis"
    for name, service in doclake.items():
        assert service["depends_on"]["minio-setup"]["condition"] == "service_completed_successfully", name
