"""Token-aware chunking that respects the document's structure.

Elements (headings, paragraphs, tables, PDF pages) are packed whole into chunks of at most
``max_tokens`` model tokens; a heading always starts a new chunk, and an element longer than a chunk
is cut into overlapping token windows. Each chunk's text is exactly ``document.text[char_start:char_end]``.

Why headings break chunks: packing is greedy, so an edit that changes a paragraph's length can shift
every later boundary. Breaking at headings re-synchronises the boundaries after each section, so an
edit re-embeds the chunks of one section instead of the rest of the document.
"""

from __future__ import annotations

from typing import Any

from pipelines.contracts.documents import Chunk, ChunkerConfig, Element, ElementKind, ExtractedDocument
from pipelines.contracts.ids import sha256_hex
from pipelines.embed.model import raw_tokenizer

__all__ = ["chunk_document"]

# [CLS] and [SEP]: the model's max_seq_length counts them, so a chunk's own tokens must leave room.
_SPECIAL_TOKENS = 2


class _Piece:
    """A span of the document text with its token count, the unit the packer moves around."""

    __slots__ = ("char_end", "char_start", "is_title", "page", "tokens")

    def __init__(
        self, char_start: int, char_end: int, tokens: int, page: int | None, *, is_title: bool = False
    ) -> None:
        self.char_start = char_start
        self.char_end = char_end
        self.tokens = tokens
        self.page = page
        self.is_title = is_title


def _token_counts(tokenizer: Any, texts: list[str]) -> list[list[tuple[int, int]]]:
    if not texts:
        return []
    backend = raw_tokenizer(tokenizer)
    if backend is not None:
        return [list(e.offsets) for e in backend.encode_batch(texts, add_special_tokens=False)]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets: list[list[tuple[int, int]]] = [list(map(tuple, o)) for o in enc["offset_mapping"]]
    return offsets


def _windows(offsets: list[tuple[int, int]], budget: int, overlap: int) -> list[tuple[int, int, int]]:
    """(char_start, char_end, tokens) windows over one long element's token offsets."""
    step = max(1, budget - overlap)
    windows: list[tuple[int, int, int]] = []
    start = 0
    while start < len(offsets):
        end = min(len(offsets), start + budget)
        windows.append((offsets[start][0], offsets[end - 1][1], end - start))
        if end == len(offsets):
            break
        start += step
    return windows


def chunk_document(
    document: ExtractedDocument,
    *,
    tokenizer: Any,
    config: ChunkerConfig,
) -> list[Chunk]:
    """Cut a document into chunks.

    Args:
        document: extracted elements.
        tokenizer: a Hugging Face fast tokenizer (the embedding model's), used to count tokens.
        config: token budget, overlap, heading behaviour.
    """
    elements: list[Element] = document.elements
    text = document.text
    starts = document.element_offsets()
    budget = config.max_tokens - _SPECIAL_TOKENS
    token_offsets = _token_counts(tokenizer, [e.text for e in elements])

    chunks_spans: list[tuple[list[_Piece], list[str]]] = []
    current: list[_Piece] = []
    current_tokens = 0
    headings: list[tuple[int, str]] = []  # (level, title) stack
    current_path: list[str] = []

    def flush() -> None:
        nonlocal current, current_tokens
        if current:
            chunks_spans.append((current, current_path))
        current, current_tokens = [], 0

    for element, start, offsets in zip(elements, starts, token_offsets, strict=True):
        n = len(offsets)
        is_title = element.kind == ElementKind.title
        if is_title:
            # Consecutive headings stay together with the text that follows them.
            if config.break_on_headings and any(not p.is_title for p in current):
                flush()
            while headings and headings[-1][0] >= element.level:
                headings.pop()
            headings.append((element.level, element.text[:200]))
        if all(p.is_title for p in current):
            current_path = [t for _, t in headings]
        if n > budget:
            flush()
            current_path = [t for _, t in headings]
            for ws, we, wn in _windows(offsets, budget, config.overlap_tokens):
                chunks_spans.append(([_Piece(start + ws, start + we, wn, element.page)], current_path))
            continue
        # The blank-line separator costs no tokens (whitespace), so counts simply add up.
        if current and current_tokens + n > budget:
            flush()
            current_path = [t for _, t in headings]
        current.append(_Piece(start, start + len(element.text), n, element.page, is_title=is_title))
        current_tokens += n
    flush()

    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for ordinal, (pieces, path) in enumerate(chunks_spans):
        char_start, char_end = pieces[0].char_start, pieces[-1].char_end
        chunk_text = text[char_start:char_end]
        sha = sha256_hex(chunk_text)
        occurrence = seen.get(sha, 0)
        seen[sha] = occurrence + 1
        pages = [p.page for p in pieces if p.page is not None]
        chunks.append(
            Chunk(
                ordinal=ordinal,
                text=chunk_text,
                text_sha256=sha,
                occurrence=occurrence,
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                char_start=char_start,
                char_end=char_end,
                heading_path=list(path),
            )
        )
    return chunks
