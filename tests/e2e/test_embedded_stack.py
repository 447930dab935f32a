"""End to end over HTTP against the real embedded stack started by ``doclake up``.

The API, the supervisor and the Celery worker processes (filesystem broker) are separate processes,
so every assertion that the API sees a document indexed is also the proof that it sees a worker
process's Delta and LanceDB writes without a restart.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.client import DoclakeClient, NamedBytes, Source
from pipelines.contracts.documents import DocumentStatus
from pipelines.lakehouse.chunks import doc_chunks
from pipelines.lakehouse.lake import Lake
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS
from pipelines.storage.locks import FileLocks
from pipelines.vectorstore.lance import LanceVectorStore
from tests.e2e.stack import Stack, embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# Files that must end `indexed`: every supported format, plus two whose extension lies.
GOOD = [
    "pdf/pypdf__pdflatex-4-pages.pdf",
    "pdf/unst__loremipsum-flat.pdf",  # a scan: no text layer, read by OCR
    "other/unst__layout-parser-paper-fast.jpg",  # a photo of a page, read by OCR
    "pdf/unst__list-item-example.pdf",
    "pdf/unst__copy-protected.pdf",
    "docx/unst__simple.docx",
    "docx/unst__fake_table.docx",
    "docx/unst__eng_spa_mult.docx",
    "pptx/unst__fake-power-point.pptx",
    "pptx/unst__fake-power-point-table.pptx",
    "html/unst__fake-html.html",
    "html/unst__fake-html-cp1252.html",
    "html/unst__example-steelJIS-datasheet-utf-16.html",
    "md/unst__codeblock.md",
    "md/readability__README.md",
    "md/unst__umlauts-utf8.md",
    "eml/unst__family-day.eml",
    "eml/unst__fake-email.eml",
    "eml/mailparser__mail_test_12.eml",
    "txt/unst__book-war-and-peace-1p.txt",
    "txt/unst__fake-text-utf-16.txt",
    "txt/unst__eng_afr_spa.txt",
    "xlsx/unst__vodafone.xlsx",
    "xlsx/unst__emoji.xlsx",
    "csv/unst__stanley-cups.tsv",
    "csv/unst__csv-with-escaped-commas.csv",
    "csv/unst__semicolon-delimited.csv",
    "other/unst__eng_spa_mult.doc",  # a DOCX named .doc
    "other/unst__fake-email.txt",  # an email named .txt
]

# Files that must end `failed`, with the error code their status must start with.
BROKEN = {
    "pdf/unst__password.pdf": "encrypted",
    "xlsx/unst__password_protected.xlsx": "encrypted",
    "docx/poi__truncated62886.docx": "extraction_failed",
    "pdf/pypdf__imagemagick-CCITTFaxDecode.pdf": "no_text",  # an 8x8-pixel fax image: OCR reads nothing
    "txt/unst__empty.txt": "no_text",
    "other/unst__fake.doc": "unsupported_format",  # legacy binary Word
}
# The decompression bomb must end in a terminal state within the bound, whatever its content yields.
HOSTILE = "hostile/pdfjs__bomb_giant.pdf"

SEARCHES = {
    "Genoa and Lucca are now just family estates of the Buonapartes": "txt/unst__book-war-and-peace-1p.txt",
    "face painting, a petting zoo and funnel cake at the family day": "eml/unst__family-day.eml",
    "install the readability library from npm and parse a DOM document": "md/readability__README.md",
    "Nunc sollicitudin molestie consequat. Morbi efficitur, ipsum maximus tristique lobortis": (
        "pdf/unst__loremipsum-flat.pdf"
    ),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with embedded_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


def _wait_all(client: DoclakeClient, ids: dict[str, str], timeout: float = 900) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    docs = {}
    for name, doc_id in ids.items():
        docs[name] = client.wait(doc_id, timeout=max(1.0, deadline - time.monotonic()))
    return docs


def test_only_the_embedding_worker_loads_the_model_and_it_gets_every_core(stack: Stack) -> None:
    stack.client.upload_and_wait(b"# Threads\n\nThe embedding worker owns the cores.", filename="threads.md")
    deadline = time.monotonic() + 60
    while True:  # the warm-up thread logs after its own first encode
        loaded = re.findall(r"worker model loaded \([\w-]+, (\d+) threads\)", stack.log.read_text(errors="replace"))
        if loaded or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # One embedding process (DOCLAKE_EMBED_CONCURRENCY=1); the extraction processes never load it.
    assert loaded == [str(os.cpu_count())]


def test_corpus_upload_reaches_terminal_states_and_is_searchable(stack: Stack, corpus: Path) -> None:
    ids: dict[str, str] = {}
    by_bytes: dict[bytes, str] = {}
    for rel in [*GOOD, *BROKEN, HOSTILE]:
        data = (corpus / rel).read_bytes()
        accepted = stack.client.upload(corpus / rel)
        if data in by_bytes:
            # The corpus holds byte-identical files under other names (a DOCX named .doc): ids are
            # content-derived, so the second upload is the same document and queues nothing; its status
            # is wherever the worker has got to with the first.
            assert accepted.duplicate and accepted.doc_id == ids[by_bytes[data]]
        else:
            assert accepted.status == DocumentStatus.queued and not accepted.duplicate
            by_bytes[data] = rel
        ids[rel] = accepted.doc_id
    docs = _wait_all(stack.client, ids)

    not_indexed = {rel: (d.status, d.error) for rel, d in docs.items() if rel in GOOD and d.status != "indexed"}  # type: ignore[attr-defined]
    assert not not_indexed
    for rel, code in BROKEN.items():
        doc = docs[rel]
        assert doc.status == "failed", (rel, doc)  # type: ignore[attr-defined]
        assert doc.error.startswith(code), (rel, doc.error)  # type: ignore[attr-defined]
    assert docs[HOSTILE].status in ("indexed", "failed")  # type: ignore[attr-defined]
    # Extraction children fork from a clean server, not from a worker that has used LanceDB and deltalake:
    # lancedb warned at every such fork that a deadlock remained possible.
    assert "fork support is experimental" not in stack.log.read_text(errors="replace")

    for phrase, rel in SEARCHES.items():
        results = stack.client.search(phrase, top_k=5).results
        assert results and results[0].doc_id == ids[rel], (phrase, [r.filename for r in results])
        assert results[0].filename == Path(rel).name
        assert results[0].ocr is (rel == "pdf/unst__loremipsum-flat.pdf")  # the hit says it came from OCR

    # The failed list is the quarantine operators look at.
    failed = stack.client.list(status=DocumentStatus.failed, limit=1000)
    assert {d.doc_id for d in failed.documents} >= {ids[rel] for rel in BROKEN}

    # Delete: gone from search at once, status says deleted.
    target = ids["eml/unst__family-day.eml"]
    assert stack.client.delete(target).status == "deleted"
    results = stack.client.search("face painting, a petting zoo and funnel cake", top_k=10).results
    assert target not in {r.doc_id for r in results}
    assert stack.client.get(target).status == "deleted"


def _manual(sections: int, *, edited: int | None = None) -> bytes:
    parts = ["# Runbook\n"]
    for i in range(sections):
        body = f"Step {i}: verify that replica {i} has caught up, then promote it and update the DNS record."
        if i == edited:
            body = f"Step {i}: freeze writes, snapshot the volume, and restore it into the standby region."
        parts.append(f"## Part {i}\n\n{body}\n")
    return "\n".join(parts).encode()


def test_edit_reembeds_only_the_changed_chunk(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_bytes(_manual(32))
    v1 = stack.client.upload(path, doc_id="runbook", metadata={"team": "sre"})
    doc1 = stack.client.wait("runbook", version=v1.version)
    assert doc1.status == "indexed" and doc1.chunks == 32 and doc1.chunks_embedded == 32

    store = LanceVectorStore(stack.data_dir / "vectors")
    ids_v1 = set(store.document_ids("default", "runbook"))
    path.write_bytes(_manual(32, edited=7))
    v2 = stack.client.upload(path, doc_id="runbook")
    assert v2.version == v1.version + 1
    doc2 = stack.client.wait("runbook", version=v2.version)
    assert (doc2.status, doc2.chunks, doc2.chunks_embedded, doc2.chunks_reused) == ("indexed", 32, 1, 31)
    assert doc2.metadata == {"team": "sre"}  # kept from v1

    ids_v2 = set(store.document_ids("default", "runbook"))
    assert len(ids_v2) == 32 and len(ids_v1 - ids_v2) == 1
    lake = Lake(stack.data_dir.resolve() / "lake", locks=FileLocks(stack.data_dir / "run" / "locks"))
    assert doc_chunks(lake, "default", "runbook").num_rows == 32
    hit = stack.client.search("freeze writes and snapshot the volume", top_k=1, filter={"team": "sre"}).results[0]
    assert hit.doc_id == "runbook" and hit.version == v2.version and "snapshot the volume" in hit.text

    same = stack.client.upload(path, doc_id="runbook")
    assert same.duplicate and same.version == v2.version


def test_duplicate_delivery_and_the_sweeper(stack: Stack) -> None:
    # Register two versions straight into the lake, as an S3 event would, without queueing them.
    stack.python(
        "from pipelines.runtime import Runtime; from pipelines.settings import get_settings; "
        "from pipelines.ingest.register import RegisterItem, register_objects; "
        "rt = Runtime.from_settings(get_settings()); "
        "register_objects(rt, ["
        "RegisterItem(data=b'Twice delivered: the quarterly capacity review covers disk growth.', "
        "filename='twice.txt', doc_id='twice'), "
        "RegisterItem(data=b'Swept: nobody queued this note about certificate renewal.', "
        "filename='swept.txt', doc_id='swept')])",
    )
    assert stack.client.get("twice").status == "queued"
    # The same processing chain delivered twice.
    stack.python(
        "from workers.dispatch import enqueue_processing; "
        "enqueue_processing('default', 'twice', 1); enqueue_processing('default', 'twice', 1)",
    )
    assert stack.client.wait("twice", timeout=300).status == "indexed"
    time.sleep(3)  # let the second delivery finish too
    lake = Lake(stack.data_dir.resolve() / "lake", locks=FileLocks(stack.data_dir / "run" / "locks"))
    rows = doc_chunks(lake, "default", "twice")
    store = LanceVectorStore(stack.data_dir / "vectors")
    assert rows.num_rows == 1 and len(store.document_ids("default", "twice")) == 1
    assert lake.read(CHUNKS, "doc_id = 'twice'").num_rows == 1

    # The stuck one is found and re-enqueued by the sweeper.
    assert stack.client.get("swept").status == "queued"
    out = stack.run("sweep", "--older-than", "0")
    assert "re-enqueued 1 documents" in out
    assert stack.client.wait("swept", timeout=300).status == "indexed"
    assert stack.client.search("certificate renewal", top_k=1).results[0].doc_id == "swept"


def test_batch_upload_and_cli_ingest_go_through_the_batch_tasks(stack: Stack, corpus: Path, tmp_path: Path) -> None:
    rels = ["txt/unst__norwich-city.txt", "md/unst__simple-table.md", "txt/unst__fake-text.txt"]
    rels.append("pdf/unst__password.pdf")  # fails alone
    sources: list[Source | NamedBytes] = [(Path(rel).name, (corpus / rel).read_bytes()) for rel in rels]
    accepted = stack.client.upload_many(sources, doc_ids=[f"batch-{i}" for i in range(len(rels))])
    assert (accepted.accepted, accepted.rejected) == (4, 0)
    docs = {i.doc_id: stack.client.wait(i.doc_id or "", version=i.version, timeout=600) for i in accepted.items}
    assert {d: doc.status.value for d, doc in docs.items()} == {
        "batch-0": "indexed",
        "batch-1": "indexed",
        "batch-2": "indexed",
        "batch-3": "failed",
    }
    assert (docs["batch-3"].error or "").startswith("encrypted")
    assert (
        stack.client.search("Iwan Roberts, the Welsh forward who scored for Norwich City", top_k=1).results[0].doc_id
        == "batch-0"
    )

    # The extract worker wrote the three readable files' text in one silver commit.
    lake = Lake(stack.data_dir.resolve() / "lake", locks=FileLocks(stack.data_dir / "run" / "locks"))
    updated = [
        int((h.get("operationMetrics") or {}).get("num_target_rows_updated", 0))
        for h in lake.table(DOCUMENTS).history()
        if h.get("operation") == "MERGE"
    ]
    assert max(updated) >= 3, updated

    # `doclake ingest` sends a folder in batch requests.
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, topic in enumerate(["rotating the database password", "draining a Kubernetes node", "renewing the CDN"]):
        (folder / f"note{i}.txt").write_text(f"Runbook note {i}: steps for {topic}, checked by the on-call engineer.")
    out = stack.run("ingest", str(folder), "--wait", "--batch", "2")
    assert out.count("queued") == 3 and len(re.findall(r"^indexed ", out, re.MULTILINE)) == 3, out
    assert "summary: 3 files, 3 indexed (3 chunks), 0 failed" in out, out
    assert stack.client.search("drain a Kubernetes node", top_k=1).results[0].filename == "note1.txt"
