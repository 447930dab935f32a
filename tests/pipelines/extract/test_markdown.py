"""Markdown through markdown-it (pipelines/extract/markdown.py), checked against unstructured's partition_md.

The corpus comparison keeps the fast path honest: the same words, the same headings at the same levels, and
chunks of the same substance as the unstructured path the project used before.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines.contracts.documents import ChunkerConfig, DocFormat, Element, ElementKind, ExtractedDocument
from pipelines.embed.chunker import chunk_document
from pipelines.errors import ExtractionLimitExceeded, NoTextFound
from pipelines.extract import office
from pipelines.extract.detect import detect
from pipelines.extract.extractor import extract_unbounded
from pipelines.extract.markdown import markdown_elements


def _md(text: str) -> list[tuple[str, str, int]]:
    return [(e.kind.value, e.text, e.level) for e in markdown_elements(text, doc_id="m", max_chars=10**6)]


def test_headings_keep_their_levels_atx_and_setext() -> None:
    got = _md("# Guide\n\nIntro.\n\nInstall\n-------\n\nSteps.\n\n### Deep *one*\n\nText.\n")
    assert got == [
        ("title", "Guide", 0),
        ("text", "Intro.", 0),
        ("title", "Install", 1),
        ("text", "Steps.", 0),
        ("title", "Deep one", 2),
        ("text", "Text.", 0),
    ]


def test_paragraph_markup_is_dropped_and_link_text_kept() -> None:
    got = _md(
        "Read the [install guide](https://x.example/install) and **then**\nrun `make` ![logo](l.png) <kbd>now</kbd>.\n"
    )
    assert got == [("text", "Read the install guide and then run make now.", 0)]


def test_list_items_first_paragraph_is_the_item_later_ones_are_text() -> None:
    got = _md("- alpha\n- beta\n\n  more about beta\n\n  - nested gamma\n\n1. one\n2. two\n")
    assert got == [
        ("list_item", "alpha", 0),
        ("list_item", "beta", 0),
        ("text", "more about beta", 0),
        ("list_item", "nested gamma", 0),
        ("list_item", "one", 0),
        ("list_item", "two", 0),
    ]


def test_code_blocks_keep_their_lines() -> None:
    got = _md("Example:\n\n```python\ndef f(x):\n    return x  # *not emphasis*\n```\n\n    indented\n      code\n")
    assert got == [
        ("text", "Example:", 0),
        ("text", "def f(x):\n    return x  # *not emphasis*", 0),
        ("text", "indented\n  code", 0),
    ]


def test_tables_are_rows_of_cells() -> None:
    got = _md("| name | owner |\n|---|---|\n| api | **ana** |\n| lake | bo |\n")
    assert got == [("table", "name | owner\napi | ana\nlake | bo", 0)]


def test_quotes_html_blocks_and_rules() -> None:
    got = _md('> quoted *words*\n\n---\n\n<p align="center">\n<b>Banner</b> text\n</p>\n\n<!-- a comment -->\n')
    assert got == [("text", "quoted words", 0), ("text", "Banner text", 0)]


def test_character_budget_applies() -> None:
    with pytest.raises(ExtractionLimitExceeded):
        markdown_elements("# Title\n\n" + "word " * 100, doc_id="m", max_chars=50)


def test_extract_routes_markdown_here_and_refuses_an_empty_one() -> None:
    doc = extract_unbounded(b"# Notes\n\nSome *text*.\n", doc_id="m", filename="notes.md")
    assert doc.format is DocFormat.markdown
    assert [(e.kind, e.text) for e in doc.elements] == [(ElementKind.title, "Notes"), (ElementKind.text, "Some text.")]
    with pytest.raises(NoTextFound):
        extract_unbounded(b"<!-- nothing -->\n\n---\n", doc_id="m", filename="empty.md")


def _both(path: Path) -> tuple[list[Element], list[Element]]:
    data = path.read_bytes()
    found = detect(data, filename=path.name, doc_id="m")
    assert found.format is DocFormat.markdown and found.text is not None
    before = office.partition(data, found.format, found.mime, found.text, doc_id="m", max_chars=10**8)
    return before, markdown_elements(found.text, doc_id="m", max_chars=10**8)


def _headings(elements: list[Element]) -> list[tuple[int, str]]:
    return [(e.level, e.text) for e in elements if e.kind is ElementKind.title]


def test_corpus_markdown_matches_unstructured_in_substance(corpus: Path, tokenizer: Any) -> None:
    files = sorted((corpus / "md").glob("*.md"))
    assert len(files) >= 10
    config = ChunkerConfig()
    for path in files:
        before, after = _both(path)
        words_before = Counter(" ".join(e.text for e in before).split())
        words_after = Counter(" ".join(e.text for e in after).split())
        shared = sum((words_before & words_after).values())
        # Every file keeps at least 94% of its words (the rest: a fence Python-Markdown misread in README-ja,
        # emphasis next to CJK punctuation that CommonMark leaves as literal asterisks).
        assert shared >= 0.94 * max(sum(words_before.values()), sum(words_after.values())), path.name
        heads_before, heads_after = _headings(before), _headings(after)
        if path.name == "unst__CHANGELOG.md":
            # Python-Markdown reads one list item just above a heading as a heading; CommonMark does not.
            assert len(heads_before) - len(heads_after) == 1
            assert set(heads_after) <= set(heads_before)
        else:
            assert heads_after == heads_before, path.name
        kinds_before = Counter(e.kind for e in before)
        kinds_after = Counter(e.kind for e in after)
        for kind in ElementKind:
            assert abs(kinds_before[kind] - kinds_after[kind]) <= max(4, 0.07 * kinds_before[kind]), (path.name, kind)
        # The chunks a document gets: as many, under the same heading paths.
        chunks_before = chunk_document(_doc(before), tokenizer=tokenizer, config=config)
        chunks_after = chunk_document(_doc(after), tokenizer=tokenizer, config=config)
        assert abs(len(chunks_before) - len(chunks_after)) <= max(1, 0.05 * len(chunks_before)), path.name
        paths_before = {tuple(c.heading_path) for c in chunks_before}
        paths_after = {tuple(c.heading_path) for c in chunks_after}
        assert len(paths_before ^ paths_after) <= max(1, 0.02 * len(paths_before)), path.name


def _doc(elements: list[Element]) -> ExtractedDocument:
    return ExtractedDocument(format=DocFormat.markdown, mime="text/markdown", elements=elements)
