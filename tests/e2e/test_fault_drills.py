"""Fault drills and hostile input against the real embedded stack (`doclake up`).

The sweeper runs every 2 s and re-enqueues documents stuck for 8 s, so drills that lose a task
recover within seconds instead of the production half hour.
"""

from __future__ import annotations

import io
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.lake import Lake
from pipelines.storage.locks import FileLocks
from pipelines.vectorstore.lance import LanceVectorStore
from tests.e2e.stack import Stack, embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MAX_UPLOAD_MB = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "DOCLAKE_STUCK_AFTER_S": "8",
        "DOCLAKE_SWEEP_INTERVAL_S": "2",
        "DOCLAKE_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "DOCLAKE_EXTRACT_TIMEOUT_S": "45",
        "DOCLAKE_STREAM_ENABLED": "false",  # the drills are about the Celery path; spare the JVM
    }
    with embedded_stack(tmp_path_factory.mktemp("drills"), env=env) as running:
        yield running


def _lake(stack: Stack) -> Lake:
    return Lake(stack.data_dir.resolve() / "lake", locks=FileLocks(stack.data_dir / "run" / "locks"))


def _assert_mirrored_once(stack: Stack, doc_id: str, chunks: int) -> None:
    gold = doc_chunks(_lake(stack), "default", doc_id, columns=["chunk_id"]).column("chunk_id").to_pylist()
    vectors = LanceVectorStore(stack.data_dir / "vectors").document_ids("default", doc_id)
    assert len(gold) == len(set(gold)) == chunks
    assert sorted(vectors) == sorted(gold)


def _manual(n: int, tag: str) -> bytes:
    return "\n".join(
        f"## {tag} section {i}\n\nIn {tag} section {i} the operator checks valve {i}, records pressure {i * 3}, "
        f"and signs the {tag} log before the shift ends."
        for i in range(n)
    ).encode()


def _upload_bytes(stack: Stack, name: str, data: bytes, **form: str) -> dict[str, object]:
    r = httpx.post(f"{stack.url}/v1/documents", files={"file": (name, data)}, data=form, timeout=120)
    assert r.status_code == 202, r.text
    body: dict[str, object] = r.json()
    return body


def _worker_tree(stack: Stack, queue: str = "embed") -> list[psutil.Process]:
    """The worker that consumes ``queue`` (doclake up starts one per queue), with its pool children."""
    supervisor = psutil.Process(stack.proc.pid)
    for child in supervisor.children():
        cmd = child.cmdline()
        if "worker" in cmd and "--queues" in cmd and cmd[cmd.index("--queues") + 1] == queue:
            return [child, *child.children(recursive=True)]
    raise AssertionError(f"no {queue} worker process under doclake up")


def test_worker_killed_mid_task_is_recovered_exactly_once(stack: Stack) -> None:
    body = _upload_bytes(stack, "long-manual.md", _manual(90, "drill"), doc_id="long-manual")
    deadline = time.monotonic() + 180
    while stack.client.get("long-manual").status.value != "embedding":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for proc in _worker_tree(stack):  # the whole worker: parent and pool children, no chance to clean up
        proc.send_signal(signal.SIGKILL)
    doc = stack.client.wait("long-manual", version=int(str(body["version"])), timeout=300)
    assert doc.status == "indexed" and doc.chunks == 90
    _assert_mirrored_once(stack, "long-manual", 90)


def test_triple_delivery_and_racing_versions_end_at_the_newest(stack: Stack) -> None:
    for tag in ("alpha", "bravo", "charlie"):
        _upload_bytes(stack, "race.md", _manual(4, tag), doc_id="race")
    stack.python(
        "from workers.dispatch import enqueue_processing\nfor _ in range(3): enqueue_processing('default', 'race', 3)"
    )
    doc = stack.client.wait("race", version=3, timeout=300)
    assert (doc.status, doc.version, doc.chunks) == ("indexed", 3, 4)
    time.sleep(4)  # the extra deliveries finish too
    _assert_mirrored_once(stack, "race", 4)
    hits = stack.client.search("charlie section 2 valve", top_k=10).results
    race_hits = [h for h in hits if h.doc_id == "race"]
    assert race_hits and all("charlie" in h.text and h.version == 3 for h in race_hits)


def test_api_restart_during_ingestion_loses_nothing(stack: Stack) -> None:
    ids = [
        str(
            _upload_bytes(stack, f"n{i}.txt", f"Restart drill note {i}: the tide table for pier {i}.".encode())[
                "doc_id"
            ]
        )
        for i in range(5)
    ]
    api = next(c for c in psutil.Process(stack.proc.pid).children() if "serve" in c.cmdline())
    os.kill(api.pid, signal.SIGKILL)  # the supervisor restarts it
    deadline = time.monotonic() + 180
    while not stack.client.health():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    for doc_id in ids:
        assert stack.client.wait(doc_id, timeout=300).status == "indexed"
        _assert_mirrored_once(stack, doc_id, 1)


def _zip_bomb_docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        body = "<w:p><w:r><w:t>" + "A" * 1_000_000 + "</w:t></w:r></w:p>"
        head = (
            '<?xml version="1.0"?><w:document '
            'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        )
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(head.encode())
            for _ in range(600):  # 600 MB inflated, under a megabyte on disk
                f.write(body.encode())
            f.write(b"</w:body></w:document>")
    return buf.getvalue()


def _ten_thousand_page_pdf() -> bytes:
    from pypdf import PageObject, PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = PageObject.create_blank_page(width=300, height=300)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 20 200 Td (A page of the long generated ledger.) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    for _ in range(10_000):
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_hostile_input_gets_a_clear_status_and_the_service_stays_up(stack: Stack, corpus: Path) -> None:
    files: dict[str, bytes] = {
        f"{p.parent.name}/{p.name}": p.read_bytes()
        for folder in ("hostile", "other")
        for p in sorted((corpus / folder).iterdir())
    }
    files["generated/empty.txt"] = b""
    files["generated/latin1.txt"] = "Grüße aus Köln: Straße, Maß und Fußgänger.".encode("latin-1")
    files["generated/bomb.docx"] = _zip_bomb_docx()
    files["generated/ledger.pdf"] = _ten_thousand_page_pdf()
    ids = {name: str(_upload_bytes(stack, name.split("/")[1], data)["doc_id"]) for name, data in files.items()}
    docs = {name: stack.client.wait(doc_id, timeout=600) for name, doc_id in ids.items()}
    for name, doc in docs.items():
        assert doc.status in ("indexed", "failed"), name
        assert doc.status == "indexed" or (doc.error and ":" in doc.error), (name, doc.error)
    assert docs["generated/empty.txt"].error.startswith("no_text")  # type: ignore[union-attr]
    assert docs["generated/bomb.docx"].status == "failed"
    assert docs["generated/latin1.txt"].status == "indexed"
    assert docs["other/unst__fake.doc"].error.startswith("unsupported_format")  # type: ignore[union-attr]
    assert docs["other/unst__fake-doc.rtf"].status == "indexed"  # through pandoc
    hits = stack.client.search("Grüße aus Köln Fußgänger", top_k=3).results
    assert hits and hits[0].doc_id == ids["generated/latin1.txt"] and "Straße" in hits[0].text
    failed = httpx.get(f"{stack.url}/v1/documents", params={"status": "failed", "limit": 1000}).json()
    assert {ids[n] for n, d in docs.items() if d.status == "failed"} <= {d["doc_id"] for d in failed["documents"]}
    assert stack.client.health()


def test_a_gigabyte_stream_is_cut_at_the_limit(stack: Stack) -> None:
    sent = 0

    def zeros() -> Iterator[bytes]:
        nonlocal sent
        block = b"\0" * (1024 * 1024)
        boundary = b'--x\r\nContent-Disposition: form-data; name="file"; filename="zeros.bin"\r\n\r\n'
        yield boundary
        for _ in range(1024):  # 1 GiB, never materialised
            sent += len(block)
            yield block
        yield b"\r\n--x--\r\n"

    started = time.monotonic()
    try:
        r = httpx.post(
            f"{stack.url}/v1/documents",
            content=zeros(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
            timeout=60,
        )
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    except httpx.TransportError:
        pass  # the server may close the connection while we are still sending: also a refusal
    assert sent < 200 * 1024 * 1024, "the server kept reading far past the limit"
    assert time.monotonic() - started < 60
    assert stack.client.health()
    assert httpx.get(f"{stack.url}/v1/documents", params={"limit": 1000}).json()["total"] >= 0


def test_load_scenario_smoke(stack: Stack, corpus: Path) -> None:
    """The bench/load.py scenario on a tiny run (its real numbers go to docs/benchmarks.md)."""
    import asyncio

    from bench.load import run_load

    report = asyncio.run(run_load(stack.url, duration=6, uploaders=1, searchers=2, settle_timeout=300, corpus=corpus))
    summary = report.summary()
    assert report.uploads >= 1 and report.searches >= 1
    assert summary["error_rate"] == 0.0 and summary["lost_or_stuck"] == 0
    assert sum(report.final_status.values()) == report.uploads


def test_openapi_fuzzing_finds_no_server_error_or_schema_violation(stack: Stack, tmp_path: Path) -> None:
    """schemathesis generates requests from our OpenAPI document: no 5xx, every answer as documented."""
    import subprocess
    import sys

    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [
            str(st),
            "run",
            f"{stack.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "15",
            "--workers",
            "1",
            "--request-timeout",
            "120",
            "--exclude-path",
            "/metrics",  # Prometheus text format, not JSON
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert "passed" in done.stdout
    assert stack.client.health()
