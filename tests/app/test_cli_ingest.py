"""`doclake ingest --wait` against the API in-process: an e-mail's attachments are waited for and reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import cli as cli_module
from app.cli import cli
from app.client import DoclakeClient
from tests.attachments import GIF, message, pdf

_LINE = re.compile(r"^(indexed|failed|deleted)\s+\S+ v\d+ (.+?): ")


def test_ingest_wait_reports_each_attachment_at_every_level(
    inline_api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "_client", lambda: DoclakeClient(http=inline_api))
    inner = message(
        "Heron sighting", "The violet heron nests by the old mill.", files=[("census.txt", b"Eleven herons.")]
    )
    mail = message(
        "Weekly ops",
        "Read the attached report.",
        files=[("report.pdf", pdf("Quarterly zebra migration report")), ("logo.gif", GIF)],
        messages=[inner],
    )
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "weekly.eml").write_bytes(mail.as_bytes())

    result = CliRunner().invoke(cli, ["ingest", str(folder), "--wait"])
    # "<status> <doc_id> v<version> <where>: <chunks or error>", one line per document.
    reported = dict(reversed(m.groups()) for m in map(_LINE.match, result.output.splitlines()) if m)
    # The e-mail is indexed, so the command succeeds; the unsupported attachment fails alone, with its reason.
    assert result.exit_code == 0, result.output
    assert reported == {
        "weekly.eml": "indexed",
        "weekly.eml > report.pdf": "indexed",
        "weekly.eml > logo.gif": "failed",
        "weekly.eml > Heron sighting.eml": "indexed",
        "weekly.eml > Heron sighting.eml > census.txt": "indexed",
    }, result.output
    assert "unsupported format image/gif" in result.output
    assert result.output.splitlines()[-1] == "attachments: 1 failed, 3 indexed"
