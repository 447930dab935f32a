from __future__ import annotations

import itertools
from typing import Any

from pipelines.contracts.documents import ChunkerConfig, DocFormat, Element, ElementKind, ExtractedDocument
from pipelines.embed.chunker import chunk_document


def _doc(elements: list[Element]) -> ExtractedDocument:
    return ExtractedDocument(format=DocFormat.markdown, mime="text/markdown", elements=elements)


def _sections(n: int, *, edit: int | None = None) -> ExtractedDocument:
    elements: list[Element] = []
    for i in range(n):
        elements.append(Element(text=f"Section {i}: notes on topic {i}", kind=ElementKind.title, level=1))
        body = f"Paragraph for section {i} explains how component {i} stores its records and recovers from faults."
        if edit == i:
            body = body.replace("recovers from faults", "replays its write-ahead log after a crash")
        elements.append(Element(text=body, page=1 + i // 10))
    return _doc(elements)


def _ntokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


def test_chunk_text_is_the_exact_document_span(tokenizer: Any) -> None:
    header = "host | owner | rack"
    table = "\n".join([header, *(f"db-{i} | ops | r{i}" for i in range(40))])
    doc = _doc([*_sections(12).elements, Element(text=table, kind=ElementKind.table)])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig(max_tokens=64))
    assert chunks
    continuations = 0
    for c in chunks:
        span = doc.text[c.char_start : c.char_end]
        # The one exception: a table continuation chunk is its header row, a newline, then its span.
        if c.text != span:
            assert c.text == f"{header}\n{span}"
            continuations += 1
        assert _ntokens(tokenizer, c.text) <= 64
    assert continuations > 0
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_headings_start_chunks_and_are_recorded_in_the_path(tokenizer: Any) -> None:
    doc = _sections(5)
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig(max_tokens=256))
    # Everything would fit in one 256-token chunk; the headings still cut it into five sections.
    assert len(chunks) == 5
    assert chunks[3].text.startswith("Section 3")
    assert chunks[3].heading_path == ["Section 3: notes on topic 3"]


def test_nested_heading_path(tokenizer: Any) -> None:
    doc = _doc(
        [
            Element(text="Manual", kind=ElementKind.title, level=0),
            Element(text="Install", kind=ElementKind.title, level=1),
            Element(text="Run the installer."),
            Element(text="Upgrade", kind=ElementKind.title, level=1),
            Element(text="Run the upgrader."),
        ]
    )
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig())
    paths = {c.text.splitlines()[0]: c.heading_path for c in chunks}
    assert paths["Upgrade"] == ["Manual", "Upgrade"]


def test_long_element_is_windowed_with_overlap(tokenizer: Any) -> None:
    words = " ".join(f"word{i}" for i in range(600))
    doc = _doc([Element(text=words, page=3)])
    config = ChunkerConfig(max_tokens=64, overlap_tokens=16)
    chunks = chunk_document(doc, tokenizer=tokenizer, config=config)
    assert len(chunks) > 5
    for a, b in itertools.pairwise(chunks):
        assert b.char_start < a.char_end, "consecutive windows overlap"
        assert _ntokens(tokenizer, a.text) <= 64
    assert chunks[-1].char_end == len(words)
    assert all(c.page_start == c.page_end == 3 for c in chunks)


def test_page_span_covers_packed_pages(tokenizer: Any) -> None:
    doc = _doc([Element(text=f"Short page {i} text.", page=i) for i in range(1, 4)])
    (chunk,) = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig())
    assert (chunk.page_start, chunk.page_end) == (1, 3)


def test_duplicate_chunks_get_distinct_occurrences(tokenizer: Any) -> None:
    doc = _doc(
        [
            Element(text="Same heading", kind=ElementKind.title),
            Element(text="Same body."),
            Element(text="Same heading", kind=ElementKind.title),
            Element(text="Same body."),
        ]
    )
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig())
    assert [c.occurrence for c in chunks] == [0, 1]
    assert chunks[0].text_sha256 == chunks[1].text_sha256


def test_editing_one_paragraph_changes_only_its_chunk(tokenizer: Any) -> None:
    before = chunk_document(_sections(40), tokenizer=tokenizer, config=ChunkerConfig())
    after = chunk_document(_sections(40, edit=17), tokenizer=tokenizer, config=ChunkerConfig())
    assert len(before) == len(after) == 40
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a.text_sha256 != b.text_sha256]
    assert changed == [17]
