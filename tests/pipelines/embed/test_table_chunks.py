"""Tables longer than a chunk: cut between rows, the header row repeated, the caption kept with the table."""

from __future__ import annotations

from typing import Any

from pipelines.contracts.documents import Chunk, ChunkerConfig, DocFormat, Element, ElementKind, ExtractedDocument
from pipelines.contracts.ids import sha256_hex
from pipelines.embed.chunker import chunk_document
from pipelines.serve.rag import Candidate, pack_context, token_counter

HEADER = "name | maintainer | team"
CONFIG = ChunkerConfig(max_tokens=128)


def _doc(elements: list[Element]) -> ExtractedDocument:
    return ExtractedDocument(format=DocFormat.html, mime="text/html", elements=elements)


def _rows(n: int) -> list[str]:
    return [f"service-{i} | person {i} | team-{i % 7}" for i in range(n)]


def _table(n: int) -> Element:
    return Element(text="\n".join([HEADER, *_rows(n)]), kind=ElementKind.table, page=2)


def _ntokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


def _rows_of(chunk: Chunk) -> list[str]:
    lines = [line for line in chunk.text.splitlines() if line]
    if chunk.ordinal == 0:
        assert lines[:2] == ["Service owners", HEADER]
        return lines[2:]
    assert lines[0] == HEADER, f"chunk {chunk.ordinal} does not start with the header: {lines[0]!r}"
    return lines[1:]


def test_long_table_repeats_its_header_in_every_chunk(tokenizer: Any) -> None:
    doc = _doc([Element(text="Service owners", kind=ElementKind.title), _table(200)])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=CONFIG)
    assert len(chunks) >= 5
    assert chunks[-1].text.startswith(HEADER + "\n")  # the check: the header is in the last chunk
    covered = [row for c in chunks for row in _rows_of(c)]
    assert covered == _rows(200), "every row exactly once, in order"
    for c in chunks:
        assert _ntokens(tokenizer, c.text) <= CONFIG.max_tokens
        assert c.heading_path == ["Service owners"]
        assert (c.page_start, c.page_end) == (2, 2)
        assert c.text_sha256 == sha256_hex(c.text)
    # The first chunk is an exact span (title and table start); later ones are the header plus their rows.
    assert chunks[0].text == doc.text[chunks[0].char_start : chunks[0].char_end]
    for c in chunks[1:]:
        assert c.text == HEADER + "\n" + doc.text[c.char_start : c.char_end]
        assert doc.text[c.char_start : c.char_end].startswith("service-")


def test_a_row_longer_than_a_chunk_is_windowed_under_the_header(tokenizer: Any) -> None:
    long_row = "service-x | " + " ".join(f"person{i}" for i in range(300)) + " | team-x"
    table = "\n".join([HEADER, "service-a | person a | team-a", long_row, "service-z | person z | team-z"])
    chunks = chunk_document(_doc([Element(text=table, kind=ElementKind.table)]), tokenizer=tokenizer, config=CONFIG)
    assert len(chunks) >= 4
    assert all(c.text.startswith(HEADER + "\n") for c in chunks)
    assert all(_ntokens(tokenizer, c.text) <= CONFIG.max_tokens for c in chunks)
    assert "person299 | team-x" in chunks[-2].text
    assert chunks[-1].text == HEADER + "\nservice-z | person z | team-z"


def test_short_table_that_does_not_fit_moves_with_its_caption(tokenizer: Any) -> None:
    budget = CONFIG.max_tokens - 2
    filler = " ".join(f"word{i}" for i in range(45))
    caption = "Table 3: who maintains which service."
    table = _table(4)
    count = {t: _ntokens(tokenizer, t) - 2 for t in (filler, caption, table.text)}
    # The caption fits after the filler, the table does not, and caption and table fit together.
    assert count[filler] + count[caption] <= budget < count[filler] + count[caption] + count[table.text]
    assert count[caption] + count[table.text] <= budget
    doc = _doc([Element(text=filler), Element(text=caption), table])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=CONFIG)
    assert [c.text for c in chunks] == [filler, caption + "\n\n" + doc.elements[2].text]


def test_long_table_takes_its_caption_into_its_first_chunk(tokenizer: Any) -> None:
    caption = "Table 4: service owners, by team."
    doc = _doc([Element(text="An opening paragraph about the catalogue."), Element(text=caption), _table(200)])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=CONFIG)
    assert chunks[0].text == "An opening paragraph about the catalogue."
    assert chunks[1].text.startswith(caption + "\n\n" + HEADER + "\nservice-0 |")
    assert all(c.text.startswith(HEADER + "\n") for c in chunks[2:])


def test_a_long_caption_is_not_carried(tokenizer: Any) -> None:
    budget = CONFIG.max_tokens - 2
    filler = " ".join(f"word{i}" for i in range(12))
    lead = " ".join(f"lead{i}" for i in range(20))
    table = _table(6)
    count = {t: _ntokens(tokenizer, t) - 2 for t in (filler, lead, table.text)}
    # The table does not fit after both, would fit after the lead alone, but the lead is over a quarter.
    assert count[filler] + count[lead] + count[table.text] > budget >= count[lead] + count[table.text]
    assert count[lead] > budget // 4
    doc = _doc([Element(text=filler), Element(text=lead), table])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=CONFIG)
    assert chunks[0].text == filler + "\n\n" + lead
    assert chunks[1].text.startswith(HEADER)


def test_merged_neighbouring_table_chunks_show_the_header_once(tokenizer: Any) -> None:
    doc = _doc([_table(60)])
    chunks = chunk_document(doc, tokenizer=tokenizer, config=CONFIG)
    assert len(chunks) >= 3
    candidates = [
        Candidate(
            chunk_id=f"t-{c.ordinal}",
            doc_id="t",
            version=1,
            ordinal=c.ordinal,
            text=c.text,
            char_start=c.char_start,
            char_end=c.char_end,
            page_start=c.page_start,
            page_end=c.page_end,
            filename="t.html",
            score=1.0 - c.ordinal / 100,
        )
        for c in chunks[1:]  # from a continuation chunk on: the block must start with the header
    ]
    result = pack_context(candidates, max_tokens=10_000, count_tokens=token_counter(tokenizer))
    (citation,) = result.citations
    block = result.context[citation.context_start : citation.context_end]
    rows = _rows(60)
    first = rows.index(chunks[1].text.splitlines()[1])
    assert block == "\n".join([HEADER, *rows[first:]])
