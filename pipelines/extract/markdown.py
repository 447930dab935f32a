"""Markdown straight to our elements with markdown-it-py, without unstructured.

unstructured's ``partition_md`` renders the Markdown to HTML with Python-Markdown and then runs its HTML
partitioner over it, whose text classification tokenizes every paragraph with spaCy: about 1 s of CPU for
a 230 kB changelog, as long as the embedding of its chunks takes on int8 (docs/benchmarks.md, issue 21,
2026-12-07). The HTML partitioner's classification is spent on nothing here: Markdown says what a heading,
a list item, a table and a code block are. This module walks markdown-it's block tokens (CommonMark plus
GFM tables and strikethrough) and maps them to the same elements the unstructured path gives:

* ATX and setext headings: ``title``, level = heading level - 1 (``#`` is 0, as unstructured's depth);
* paragraphs: ``text``, inline markup dropped (link text kept, images and inline HTML dropped), line
  breaks inside a paragraph read as spaces;
* list items: the first paragraph of an item is a ``list_item``; further paragraphs of the item are ``text``;
* fenced and indented code blocks: ``text`` with their lines kept as written;
* tables: ``table``, one row per line and cells joined by `` | `` (as ``office._table_text``);
* block quotes: their contents, as if unquoted; raw HTML blocks: their text content; rules: nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from pipelines.contracts.documents import Element, ElementKind
from pipelines.extract.cleanup import CharBudget

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["markdown_elements"]

_WS_RE = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # Raw HTML is recognised (so its tags never reach the text) and read by _html_text.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_elements(text: str, *, doc_id: str, max_chars: int) -> list[Element]:
    """The elements of a Markdown document.

    Args:
        text: the decoded Markdown.
        doc_id: carried on the limit error.
        max_chars: most characters of text the document may yield.

    Raises:
        ExtractionLimitExceeded: the elements' text exceeds ``max_chars``.
    """
    budget = CharBudget(max_chars, doc_id=doc_id)
    elements: list[Element] = []
    for kind, raw, level in _blocks(_parser().parse(text)):
        taken = budget.take(raw)
        if taken:
            elements.append(Element(text=taken, kind=kind, level=level))
    return elements


def _blocks(tokens: Sequence[Token]) -> Iterator[tuple[ElementKind, str, int]]:
    """(kind, text, heading level) of each block, in document order."""
    # One entry per open list item: whether its first paragraph was seen (later ones are plain text).
    items: list[bool] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "heading_open":
            yield ElementKind.title, _inline_text(tokens[i + 1]), max(0, int(tok.tag[1:]) - 1)
            i += 3
            continue
        if kind == "list_item_open":
            items.append(False)
        elif kind == "list_item_close":
            items.pop()
        elif kind == "paragraph_open":
            if items and not items[-1]:
                items[-1] = True
                yield ElementKind.list_item, _inline_text(tokens[i + 1]), 0
            else:
                yield ElementKind.text, _inline_text(tokens[i + 1]), 0
            i += 3
            continue
        elif kind in ("fence", "code_block"):
            yield ElementKind.text, tok.content, 0
        elif kind == "html_block":
            yield ElementKind.text, _html_text(tok.content), 0
        elif kind == "table_open":
            end = _closing(tokens, i, "table_close")
            yield ElementKind.table, _table_text(tokens[i:end]), 0
            i = end + 1
            continue
        i += 1


def _closing(tokens: Sequence[Token], start: int, close: str) -> int:
    for j in range(start + 1, len(tokens)):
        if tokens[j].type == close:
            return j
    return len(tokens) - 1


def _inline_text(inline: Token) -> str:
    """The words of an inline token: markup, images and inline HTML dropped, line breaks read as spaces."""
    parts: list[str] = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return _WS_RE.sub(" ", "".join(parts)).strip()


def _table_text(tokens: Sequence[Token]) -> str:
    rows: list[str] = []
    cells: list[str] = []
    for tok in tokens:
        if tok.type == "tr_open":
            cells = []
        elif tok.type == "inline":
            cells.append(_inline_text(tok))
        elif tok.type == "tr_close" and any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _html_text(html: str) -> str:
    """The text of a raw HTML block (a ``<p align=center>`` banner, a ``<details>``); "" if it has none."""
    try:
        from lxml import html as lxml_html

        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except Exception:  # not well-formed enough to parse: its tags are no text anyway
        return ""
    for junk in root.xpath("//script|//style"):
        junk.drop_tree()
    return _WS_RE.sub(" ", root.text_content()).strip()
