"""`doclake ingest` against the API in-process: plain lines with a running count off a terminal, the
summary, and an e-mail's attachments waited for and reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import cli as cli_module
from app.cli import cli
from app.client import DoclakeClient
from app.ingest_watch import IngestTally, reason_of
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


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a-ferry.txt").write_text("The night ferry leaves the harbour at eleven and docks before dawn.")
    (notes / "b-kiln.txt").write_text("The kiln is fired for nine hours before the glaze is checked.")
    (notes / "c-torn.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF")
    return notes


def test_plain_lines_and_summary(inline_api: TestClient, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "_client", lambda: DoclakeClient(http=inline_api))
    runner = CliRunner()

    first = runner.invoke(cli, ["ingest", str(folder), "--wait", "--batch", "2"])
    assert first.exit_code == 1, first.output  # one file failed
    lines = first.output.splitlines()
    assert sum(line.startswith("queued") for line in lines) == 3
    done = [line for line in lines if re.search(r" \[\d+/3\]$", line)]
    assert [line.rsplit(" ", 1)[1] for line in done] == ["[1/3]", "[2/3]", "[3/3]"]
    assert sum("indexed" in line for line in done) == 2 and any(
        "failed" in line and "c-torn.pdf" in line for line in done
    )
    summary = lines[lines.index(next(line for line in lines if line.startswith("summary:"))) :]
    assert summary[0] == "summary: 3 files, 2 indexed (2 chunks), 1 failed, 0 unchanged (duplicates), 0 rejected"
    assert summary[1] == "  failed 1x extraction_failed: c-torn.pdf"

    # Again: the indexed files are unchanged; the failed one is tried as a new version, and fails again.
    again = runner.invoke(cli, ["ingest", str(folder), "--wait"])
    assert "summary: 3 files, 0 indexed (0 chunks), 1 failed, 2 unchanged (duplicates), 0 rejected" in again.output


def test_without_wait_the_summary_counts_what_was_queued(
    inline_api: TestClient, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "_client", lambda: DoclakeClient(http=inline_api))
    out = CliRunner().invoke(cli, ["ingest", str(folder / "a-ferry.txt")]).output
    assert out.splitlines()[-1] == "summary: 1 files, 1 queued, 0 unchanged (duplicates), 0 rejected"


def test_failure_reasons_group_by_code() -> None:
    assert reason_of("encrypted: the PDF needs a password") == "encrypted"
    assert reason_of("worker lost: the process died") == "worker lost: the process died"  # no code: kept whole
    assert reason_of(None) == "unknown"
    tally = IngestTally(files=5, waited=True)
    tally.failed = {"encrypted": ["a.pdf", "b.pdf", "c.pdf", "d.pdf"], "timeout": ["e.pdf"]}
    assert tally.summary()[1:] == [
        "  failed 4x encrypted: a.pdf, b.pdf, c.pdf and 1 more",
        "  failed 1x timeout: e.pdf",
    ]
