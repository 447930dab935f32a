"""Plain text: unstructured's ``partition_text``, minus the classification whose answer is already known.

``partition_text`` groups lines into paragraphs and classifies each one (``element_from_text``): list item,
narrative, title or text. Telling narrative from a title tokenizes the paragraph with spaCy, in every
extraction child afresh (the vocabulary it learns dies with the child): 1.1 s of CPU for the 120 kB
multilingual UDHR file, as long as the int8 encoder takes for its chunks (docs/benchmarks.md, issue 21,
2026-12-07). Of those answers only "title" reaches our elements (narrative and plain text are both
``text``), and unstructured never calls a paragraph of more than ``UNSTRUCTURED_TITLE_MAX_WORD_LENGTH`` (12)
space-separated words a title. So such paragraphs take only the regex checks that precede the spaCy ones
in ``element_from_text`` (bullets, e-mail address, US address, numbered list); shorter ones go through
``element_from_text`` itself. The elements are the ones ``partition_text`` gives, mapped by
:func:`pipelines.extract.office.map_elements` (tests compare both on the corpus).
"""

from __future__ import annotations

import os
import re
from typing import Any

from pipelines.contracts.documents import DocFormat, Element

__all__ = ["text_elements"]


def text_elements(text: str, *, doc_id: str, max_chars: int) -> list[Element]:
    """The elements of a plain-text document, as ``partition_text`` and our mapping of it give them.

    Raises:
        ExtractionLimitExceeded: the elements' text exceeds ``max_chars``.
    """
    from pipelines.extract import office

    office.import_partitioners()  # the offline spaCy pipeline, before element_from_text can reach spaCy
    from unstructured.cleaners.core import auto_paragraph_grouper
    from unstructured.nlp.patterns import PARAGRAPH_PATTERN, UNICODE_BULLETS_RE
    from unstructured.partition.text import element_from_text

    # unstructured's own bound (text_type.is_possible_title reads the same variable, default 12).
    title_max_words = int(os.environ.get("UNSTRUCTURED_TITLE_MAX_WORD_LENGTH", 12))
    raw: list[Any] = []
    if text.strip():
        for paragraph in re.split(PARAGRAPH_PATTERN, auto_paragraph_grouper(text).strip()):
            paragraph = paragraph.strip()
            if not paragraph or (len(paragraph) == 1 and UNICODE_BULLETS_RE.match(paragraph)):
                continue
            if len(paragraph.split(" ")) > title_max_words:
                raw.append(_long_paragraph(paragraph))
            else:
                raw.append(element_from_text(paragraph))
    return office.map_elements(raw, DocFormat.text, doc_id=doc_id, max_chars=max_chars)


def _long_paragraph(text: str) -> Any:
    """``element_from_text`` for a paragraph too long to be a title: its checks in its order, up to the
    narrative one, whose spaCy answer (narrative or plain text) maps to ``text`` either way."""
    from unstructured.cleaners.core import clean_bullets
    from unstructured.documents.elements import Address, EmailAddress, ListItem, Text
    from unstructured.partition.text_type import (
        is_bulleted_text,
        is_email_address,
        is_possible_numbered_list,
        is_us_city_state_zip,
    )

    if is_bulleted_text(text):
        return ListItem(text=clean_bullets(text))
    if is_email_address(text):
        return EmailAddress(text=text)
    if is_us_city_state_zip(text):
        return Address(text=text)
    if is_possible_numbered_list(text):
        return ListItem(text=text)
    return Text(text=text)
