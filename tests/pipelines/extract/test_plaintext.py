"""Plain text without spaCy for paragraphs that cannot be titles (pipelines/extract/plaintext.py).

The path must give exactly the elements unstructured's partition_text gave through our mapping: it only
skips questions whose answer cannot change the element.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contracts.documents import DocFormat, ElementKind
from pipelines.errors import NoTextFound
from pipelines.extract import office
from pipelines.extract.detect import detect
from pipelines.extract.extractor import extract_unbounded
from pipelines.extract.plaintext import text_elements

_LONG = "This paragraph has many more than twelve words, so it can never be read as a heading at all"


def test_kinds_of_short_and_long_paragraphs() -> None:
    text = f"Getting started\n\n{_LONG}.\n\n• {_LONG}, bulleted\n\n1. {_LONG}, numbered\n\nPrince Vasili rose.\n"
    got = [(e.kind, e.text) for e in text_elements(text, doc_id="t", max_chars=10**6)]
    assert got == [
        (ElementKind.title, "Getting started"),
        (ElementKind.text, f"{_LONG}."),
        (ElementKind.list_item, f"{_LONG}, bulleted"),  # the bullet is cleaned off, as unstructured does
        (ElementKind.list_item, f"1. {_LONG}, numbered"),
        (ElementKind.text, "Prince Vasili rose."),  # a heuristic title ending like a sentence is text
    ]


def test_extract_routes_text_here_and_refuses_a_blank_one() -> None:
    doc = extract_unbounded(f"Notes\n\n{_LONG}.\n".encode(), doc_id="t", filename="notes.txt")
    assert doc.format is DocFormat.text
    assert [e.kind for e in doc.elements] == [ElementKind.title, ElementKind.text]
    with pytest.raises(NoTextFound):  # a file of empty bullets has no text
        extract_unbounded("•\n\n•\n".encode(), doc_id="t", filename="bullets.txt")


def test_corpus_text_files_give_the_elements_partition_text_gives(corpus: Path) -> None:
    compared = 0
    for path in sorted((corpus / "txt").iterdir()):
        data = path.read_bytes()
        if not data.strip() or len(data) > 1_000_000:  # empty files fail detection; the 3 MB book takes long
            continue
        found = detect(data, filename=path.name, doc_id="t")
        assert found.format is DocFormat.text and found.text is not None
        before = office.partition(data, found.format, found.mime, found.text, doc_id="t", max_chars=10**8)
        assert text_elements(found.text, doc_id="t", max_chars=10**8) == before, path.name
        compared += 1
    assert compared >= 8
