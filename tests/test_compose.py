"""docker-compose.yml cannot be run here (no Docker engine), so its wiring is checked against the code."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from app.cli import cli

REPO = Path(__file__).resolve().parents[1]


def test_compose_services_run_real_cli_commands() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = typer.main.get_command(cli).commands  # type: ignore[attr-defined]
    services = compose["services"]
    assert {"redis", "api", "worker-extract", "worker-embed", "sweeper"} <= services.keys()
    for name, service in services.items():
        command = service.get("command", [])
        if command[:1] != ["doclake"]:
            continue
        sub = commands[command[1]]
        known = {opt for p in sub.params for opt in p.opts}
        assert {arg for arg in command[2:] if arg.startswith("--")} <= known, name
        assert service["environment"]["DOCLAKE_BROKER_URL"].startswith("redis://redis:6379")
    queues = {
        s["command"][s["command"].index("--queues") + 1]
        for s in services.values()
        if "--queues" in s.get("command", [])
    }
    assert queues == {"extract", "embed"}


def test_image_installs_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("app", "workers", "pipelines"):
        assert f"COPY {package} ./{package}" in dockerfile
