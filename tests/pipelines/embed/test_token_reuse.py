"""The chunker's token ids reach the encoder (pipelines/embed/chunker.py ``chunk_tokens``): each chunk is
tokenized once, and only where the ids are exactly what tokenizing its text gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.contracts.documents import ChunkerConfig, DocFormat, Element, ElementKind, ExtractedDocument
from pipelines.embed.chunker import chunk_document, chunk_tokens
from pipelines.embed.model import Embedder
from pipelines.embed.tokens import raw_tokenizer
from pipelines.extract.extractor import extract_unbounded

_FILES = [
    "md/unst__CHANGELOG.md",
    "md/taocl__README-ja.md",
    "md/mdtest__TEST.md",
    "txt/unst__norwich-city.txt",
    "txt/unst__UDHR_first_article_all.txt",
]


def _table_document() -> ExtractedDocument:
    rows = ["name | maintainer | team"] + [f"service-{i} | owner{i}@example.org | platform" for i in range(120)]
    long_row = "notes | " + " ".join(f"supercalifragilistic{i}" for i in range(200)) + " | x"
    return ExtractedDocument(
        format=DocFormat.docx,
        mime="application/octet-stream",
        elements=[
            Element(text="Services", kind=ElementKind.title),
            Element(text="Table 1: who runs what.", kind=ElementKind.text),
            Element(text="\n".join([*rows, long_row]), kind=ElementKind.table),
            Element(text="unbreakable " * 400, kind=ElementKind.text),
        ],
    )


def _documents(corpus: Path) -> list[ExtractedDocument]:
    docs = [extract_unbounded((corpus / n).read_bytes(), doc_id="t", filename=Path(n).name) for n in _FILES]
    return [*docs, _table_document()]


def test_known_ids_are_the_tokenization_of_the_chunk_text(corpus: Path, tokenizer: Any) -> None:
    raw = raw_tokenizer(tokenizer)
    config = ChunkerConfig()
    known = unknown = 0
    for doc in _documents(corpus):
        pairs = chunk_tokens(doc, tokenizer=tokenizer, config=config)
        assert [c for c, _ in pairs] == chunk_document(doc, tokenizer=tokenizer, config=config)
        for chunk, ids in pairs:
            if ids is None:
                unknown += 1
                continue
            known += 1
            assert ids == raw.encode(chunk.text, add_special_tokens=False).ids, chunk.text[:80]
    # Whole elements and table rows (headers repeated) carry their ids; windows cut from long elements do not.
    assert unknown >= 3
    assert known >= 0.9 * (known + unknown)


def test_vectors_from_reused_ids_equal_vectors_from_text(embedder: Embedder, corpus: Path, tokenizer: Any) -> None:
    pairs = [
        p for doc in _documents(corpus)[-3:] for p in chunk_tokens(doc, tokenizer=tokenizer, config=ChunkerConfig())
    ]
    chosen = pairs[:40] + [p for p in pairs if p[1] is None]  # windows of the long element and row
    texts = [c.text for c, _ in chosen]
    ids = [i for _, i in chosen]
    assert any(i is not None for i in ids) and any(i is None for i in ids)
    with_ids = np.array(embedder.encode(texts, token_ids=ids))
    from_text = np.array(embedder.encode(texts))
    assert np.array_equal(with_ids, from_text)
