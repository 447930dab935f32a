"""Search hits say whether their chunk was read by OCR, from the pages silver recorded for the version."""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter

from pipelines.contracts.search import SearchHit
from pipelines.extract.pdf import minimal_pdf
from pipelines.runtime import Runtime
from pipelines.serve.provenance import annotate
from tests.scans import image_pdf, text_image
from tests.steps import process_one, register_one


def _hit(doc_id: str, version: int, pages: tuple[int | None, int | None]) -> SearchHit:
    return SearchHit(
        chunk_id=f"{doc_id}-{pages}", doc_id=doc_id, version=version, filename=None, text="", score=1.0,
        page_start=pages[0], page_end=pages[1], char_start=0, char_end=0,
    )  # fmt: skip


def test_hits_are_marked_ocr_by_the_pages_they_span(runtime: Runtime) -> None:
    writer = PdfWriter()
    for pdf in (minimal_pdf("A born-digital first page with plenty of letters."), image_pdf([text_image(["Scan."])])):
        writer.add_page(PdfReader(io.BytesIO(pdf)).pages[0])
    out = io.BytesIO()
    writer.write(out)
    done = register_one(runtime, out.getvalue(), filename="mixed.pdf", doc_id="mixed")
    assert process_one(runtime, "default", "mixed", done.version).state == "done"

    hits = [_hit("mixed", done.version, p) for p in ((1, 1), (2, 2), (1, 2), (None, None))]
    assert [h.ocr for h in annotate(runtime, "default", hits)] == [False, True, True, True]
    # A version silver no longer holds as current keeps the defaults rather than another version's facts.
    (old,) = annotate(runtime, "default", [_hit("mixed", done.version + 1, (2, 2))])
    assert old.ocr is False and old.parent_doc_id is None
