"""Token-aware chunking that respects the document's structure.

Elements (headings, paragraphs, tables, PDF pages) are packed whole into chunks of at most
``max_tokens`` model tokens; a heading always starts a new chunk, and an element longer than a chunk
is cut into overlapping token windows. Each chunk's text is exactly ``document.text[char_start:char_end]``,
except a table continuation chunk, which is prefixed with its header row (see below).

Why headings break chunks: packing is greedy, so an edit that changes a paragraph's length can shift
every later boundary. Breaking at headings re-synchronises the boundaries after each section, so an
edit re-embeds the chunks of one section instead of the rest of the document.

Tables (one row per line, cells joined by `` | ``) longer than a chunk are cut between rows, and every
chunk after the first starts with the table's first row, its header, followed by a newline: a chunk
holding rows 150-200 of "name | maintainer | team" must still say which column is the maintainer. Its
``char_start``/``char_end`` span only the rows it took from the document, so ``text`` is
``header + "\\n" + document.text[char_start:char_end]`` and the header counts against the budget. A
single row longer than a chunk falls back to token windows (each prefixed with the header when the
header takes at most half the budget). When a table starts a new chunk, the short element right before
it (a "Table 3: ..." caption or a lead-in sentence, at most a quarter of the budget) and the headings
just above that move with it, so the table is not separated from what introduces it.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from pipelines.contracts.documents import Chunk, ChunkerConfig, Element, ElementKind, ExtractedDocument
from pipelines.contracts.ids import sha256_hex
from pipelines.embed.tokens import raw_tokenizer

__all__ = ["chunk_document", "chunk_tokens", "document_title", "embedding_text"]

# [CLS] and [SEP]: the model's max_seq_length counts them, so a chunk's own tokens must leave room.
_SPECIAL_TOKENS = 2

# A chunk's own headings sit at its start (a heading starts a chunk, consecutive headings stay together):
# context already found this far into the chunk is not repeated in front of it.
_CONTEXT_SEEN_CHARS = 512
# The context line is a hint, not content: a long heading path must not crowd out the chunk's own tokens.
_CONTEXT_MAX_CHARS = 300

# A first line this short, followed by more text, is read as the document's title (see document_title).
_TITLE_MAX_CHARS = 200

# A table's rows: its non-blank lines.
_ROW_RE = re.compile(r"[^\n]*\S[^\n]*")


class _Piece:
    """A span of the document text with its token count, the unit the packer moves around."""

    __slots__ = ("char_end", "char_start", "ids", "kind", "page", "tokens")

    def __init__(
        self,
        char_start: int,
        char_end: int,
        tokens: int,
        page: int | None,
        kind: ElementKind = ElementKind.text,
        ids: list[int] | None = None,
    ) -> None:
        self.char_start = char_start
        self.char_end = char_end
        self.tokens = tokens
        self.page = page
        self.kind = kind
        self.ids = ids  # the span's token ids when they are exactly what tokenizing its text gives

    @property
    def is_title(self) -> bool:
        return self.kind == ElementKind.title


class _Draft:
    """A chunk before its text is cut: contiguous pieces, the heading path, and the header prefix of a table."""

    __slots__ = ("path", "pieces", "prefix", "prefix_ids")

    def __init__(
        self, pieces: list[_Piece], path: list[str], prefix: str = "", prefix_ids: list[int] | None = None
    ) -> None:
        self.pieces = pieces
        self.path = path
        self.prefix = prefix
        self.prefix_ids = prefix_ids

    def token_ids(self) -> list[int] | None:
        """The chunk text's token ids (no special tokens), or None when a piece's are not known exactly.

        Whole elements and whole table rows qualify: the tokenizer never joins tokens across whitespace, and
        pieces are separated by whitespace only, so its tokens are the pieces' tokens in order. A window cut
        from a long element does not (re-tokenized, a cut through a word gives other word pieces).
        """
        if self.prefix and self.prefix_ids is None:
            return None
        ids = list(self.prefix_ids or ())
        for piece in self.pieces:
            if piece.ids is None:
                return None
            ids.extend(piece.ids)
        return ids


def _tokenize(tokenizer: Any, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Each text's (token ids, character offsets of the tokens), without special tokens."""
    if not texts:
        return []
    backend = raw_tokenizer(tokenizer)
    if backend is not None:
        return [(e.ids, list(e.offsets)) for e in backend.encode_batch(texts, add_special_tokens=False)]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [
        (list(ids), [(int(a), int(b)) for a, b in offsets])
        for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
    ]


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


def _rows(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int, list[tuple[int, int]], int]]:
    """A table element's rows: (char_start, char_end, token offsets, index of the first token), relative to
    the element's text.

    A token belongs to the row its first character is in; WordPiece never joins across a newline, so the
    rows' counts add up to the element's.
    """
    token_starts = [s for s, _ in offsets]
    rows = []
    for m in _ROW_RE.finditer(text):
        lo = bisect.bisect_left(token_starts, m.start())
        hi = bisect.bisect_left(token_starts, m.end())
        rows.append((m.start(), m.end(), offsets[lo:hi], lo))
    return rows


def _lead(current: list[_Piece], budget: int) -> int:
    """How many trailing pieces of the open chunk introduce a table that follows them.

    At most one short text or list element (a caption, a lead-in sentence) and the headings right above
    it, within a quarter of the budget; never part of another table.
    """
    limit = budget // 4
    taken, tokens = 0, 0
    if current and current[-1].kind in (ElementKind.text, ElementKind.list_item) and current[-1].tokens <= limit:
        taken, tokens = 1, current[-1].tokens
    while taken < len(current) and current[-1 - taken].is_title and tokens + current[-1 - taken].tokens <= limit:
        tokens += current[-1 - taken].tokens
        taken += 1
    return taken


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
    return [chunk for chunk, _ in chunk_tokens(document, tokenizer=tokenizer, config=config)]


def chunk_tokens(
    document: ExtractedDocument,
    *,
    tokenizer: Any,
    config: ChunkerConfig,
) -> list[tuple[Chunk, list[int] | None]]:
    """:func:`chunk_document`, each chunk with the token ids (no special tokens) of its text when the
    chunker knows them exactly (see ``_Draft.token_ids``), so the encoder need not tokenize it again."""
    elements: list[Element] = document.elements
    text = document.text
    starts = document.element_offsets()
    budget = config.max_tokens - _SPECIAL_TOKENS
    tokenized = _tokenize(tokenizer, [e.text for e in elements])

    drafts: list[_Draft] = []
    current: list[_Piece] = []
    current_tokens = 0
    current_prefix = ""
    current_prefix_ids: list[int] | None = None
    headings: list[tuple[int, str]] = []  # (level, title) stack
    current_path: list[str] = []

    def heading_path() -> list[str]:
        return [t for _, t in headings]

    def flush(keep: int = 0) -> None:
        """Close the open chunk; its last ``keep`` pieces start the next one."""
        nonlocal current, current_tokens, current_prefix, current_prefix_ids, current_path
        split = len(current) - keep
        if split:
            drafts.append(_Draft(current[:split], current_path, current_prefix, current_prefix_ids))
            current_path = heading_path()
        current = current[split:]
        current_tokens = sum(p.tokens for p in current)
        current_prefix, current_prefix_ids = "", None

    def add_table(element: Element, start: int, ids: list[int], offsets: list[tuple[int, int]]) -> None:
        """Pack a table longer than a chunk row by row into the open chunk and the chunks after it."""
        nonlocal current_tokens, current_prefix, current_prefix_ids
        rows = _rows(element.text, offsets)
        header_start, header_end, header_offsets, header_first = rows[0]
        header_tokens = len(header_offsets)
        repeat = len(rows) > 1 and header_tokens <= budget // 2
        prefix = element.text[header_start:header_end] + "\n" if repeat else ""
        prefix_ids = ids[header_first : header_first + header_tokens]
        for i, (row_start, row_end, row_offsets, first) in enumerate(rows):
            n = len(row_offsets)
            if current and current_tokens + n > budget:
                flush()
            if not current and i > 0 and repeat:
                current_prefix, current_prefix_ids, current_tokens = prefix, prefix_ids, header_tokens
            if current_tokens + n > budget:  # one row longer than a chunk, even alone
                row_prefix, room = current_prefix, budget - current_tokens  # the open chunk is empty here
                flush()
                relative = [(s - row_start, e - row_start) for s, e in row_offsets]
                for ws, we, wn in _windows(relative, room, config.overlap_tokens):
                    piece = _Piece(start + row_start + ws, start + row_start + we, wn, element.page, element.kind)
                    drafts.append(_Draft([piece], current_path, row_prefix))
                continue
            row_ids = ids[first : first + n]
            current.append(_Piece(start + row_start, start + row_end, n, element.page, element.kind, row_ids))
            current_tokens += n

    for element, start, (ids, offsets) in zip(elements, starts, tokenized, strict=True):
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
            current_path = heading_path()
        if element.kind == ElementKind.table and (n > budget or (current and current_tokens + n > budget)):
            # The table starts a new chunk; what introduces it goes along when there is room for it.
            lead = _lead(current, budget)
            lead_tokens = sum(p.tokens for p in current[len(current) - lead :])
            first_row = _rows(element.text, offsets)[0][2] if n > budget else offsets
            flush(keep=lead if lead_tokens + len(first_row) <= budget else 0)
            if n > budget:
                add_table(element, start, ids, offsets)
                continue
        elif n > budget:
            flush()
            for ws, we, wn in _windows(offsets, budget, config.overlap_tokens):
                piece = _Piece(start + ws, start + we, wn, element.page, element.kind)
                drafts.append(_Draft([piece], current_path))
            continue
        elif current and current_tokens + n > budget:
            # The blank-line separator costs no tokens (whitespace), so counts simply add up.
            flush()
        current.append(_Piece(start, start + len(element.text), n, element.page, element.kind, ids))
        current_tokens += n
    flush()

    chunks: list[tuple[Chunk, list[int] | None]] = []
    seen: dict[str, int] = {}
    for ordinal, draft in enumerate(drafts):
        pieces = draft.pieces
        char_start, char_end = pieces[0].char_start, pieces[-1].char_end
        chunk_text = draft.prefix + text[char_start:char_end]
        sha = sha256_hex(chunk_text)
        occurrence = seen.get(sha, 0)
        seen[sha] = occurrence + 1
        pages = [p.page for p in pieces if p.page is not None]
        chunk = Chunk(
            ordinal=ordinal,
            text=chunk_text,
            text_sha256=sha,
            occurrence=occurrence,
            page_start=min(pages) if pages else None,
            page_end=max(pages) if pages else None,
            char_start=char_start,
            char_end=char_end,
            heading_path=list(draft.path),
        )
        chunks.append((chunk, draft.token_ids()))
    return chunks


def embedding_text(chunk: Chunk, *, title: str | None = None) -> str:
    """What is embedded for ``chunk`` when its index embeds context: the document title and heading path
    the chunk does not already start with, joined by `` > `` on one line, a blank line, then the text.

    A chunk cut from the middle of a section otherwise carries no word of what the section or document is
    about. Gold and search results keep the chunk's own text; only its vector sees the context.
    """
    head = chunk.text[:_CONTEXT_SEEN_CHARS]
    parts: list[str] = []
    for raw in [title or "", *chunk.heading_path]:
        part = " ".join(raw.split())
        if part and part not in head and part not in parts:
            parts.append(part)
    if not parts:
        return chunk.text
    return " > ".join(parts)[:_CONTEXT_MAX_CHARS] + "\n\n" + chunk.text


def document_title(document: ExtractedDocument) -> str | None:
    """The document's title line: its first element when that is a heading, or a short single line
    (at most 200 characters) with more text after it — how plain-text files, e-mails and abstracts
    start. Parsers call a title ending in a full stop plain text, so the heading test alone misses them.
    """
    if len(document.elements) < 2:
        return None
    first = document.elements[0]
    text = first.text.strip()
    if not text or "\n" in text or first.kind == ElementKind.table:
        return None
    if first.kind == ElementKind.title or len(text) <= _TITLE_MAX_CHARS:
        return text
    return None
